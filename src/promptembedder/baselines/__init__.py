"""Baselines PromptEmbedder is measured against, trained by the same Trainer on the same data.

- :class:`LoRAEmbedder` (``method: lora``): LoRA adapters on the Embedding LLM, instruction as query text.
- :class:`PromptTuningEmbedder` (``method: prompt-tuning``): K learned vectors per task, frozen backbone.

Saved baselines load with :func:`load_pretrained`, which also loads a saved PromptEmbedder, so anything a
training run writes can be handed to ``promptembedder eval --model DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from promptembedder.baselines.common import BASELINE_CONFIG, BaselineEmbedder, read_baseline_metadata
from promptembedder.baselines.lora import LoRAEmbedder
from promptembedder.baselines.prompt_tuning import PromptTuningEmbedder

CLASSES: dict[str, type[BaselineEmbedder]] = {
    LoRAEmbedder.method: LoRAEmbedder,
    PromptTuningEmbedder.method: PromptTuningEmbedder,
}


def is_baseline(path: str | os.PathLike) -> bool:
    return (Path(path) / BASELINE_CONFIG).is_file()


def load_pretrained(
    path: str | os.PathLike, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> Any:
    """A saved baseline or a saved PromptEmbedder, whichever the folder holds."""
    if not is_baseline(path):
        from promptembedder import PromptEmbedder

        return PromptEmbedder.from_pretrained(path, device=device, dtype=dtype)
    method = read_baseline_metadata(path)["method"]
    if method not in CLASSES:
        raise ValueError(f"{path}: unknown baseline method {method!r}; known: {', '.join(CLASSES)}")
    return CLASSES[method].load_pretrained(path, device=device, dtype=dtype)


def build_baseline(config, *, instructions: list[str], device: str | torch.device | None = None) -> BaselineEmbedder:
    """The untrained baseline a :class:`~promptembedder.training.config.TrainConfig` names in ``method``."""
    method = getattr(config.method, "value", config.method)
    if method == LoRAEmbedder.method:
        lora = config.lora
        return LoRAEmbedder.from_config(
            config.model,
            device=device,
            seed=config.seed,
            r=lora.r,
            alpha=lora.alpha,
            dropout=lora.dropout,
            target_modules=lora.target_modules,
        )
    if method == PromptTuningEmbedder.method:
        return PromptTuningEmbedder.from_config(
            config.model, instructions=instructions, device=device, seed=config.seed
        )
    raise ValueError(f"method {method!r} is not a baseline; baselines: {', '.join(CLASSES)}")


__all__ = [
    "BaselineEmbedder",
    "LoRAEmbedder",
    "PromptTuningEmbedder",
    "build_baseline",
    "is_baseline",
    "load_pretrained",
]
