"""Soft prompts that travel: the Prompting LLM's per-task prompts, saved once, usable under any backbone's W.

A transfer keeps the Prompting LLM unchanged, so the soft prompt of an instruction *before* alignment is the
same for every Embedding LLM it was transferred to. Saved once, it lets any of those models embed without
running the Prompting LLM at all::

    prompts = export_soft_prompts(model_a, ["Retrieve the definition of the word"])
    prompts.save("prompts/")
    model_b = PromptEmbedder.from_pretrained("runs/transfer-smollm2/model")
    vectors = SoftPrompts.load("prompts/").attach(model_b).encode(texts, instruction=...)  # == model_b.encode

On disk: ``soft_prompts.safetensors`` (one (N, K, d_p) tensor, fp32) and ``soft_prompts.json`` (the N
instructions in order and the fingerprint of the Prompting LLM that wrote them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from promptembedder.config import Conditioning
from promptembedder.embedder import PromptEmbedder, weights_fingerprint

TENSORS_NAME = "soft_prompts.safetensors"
META_NAME = "soft_prompts.json"
FORMAT_VERSION = 1


class SoftPromptError(ValueError):
    """Stored soft prompts that do not fit the model they are applied to, or a damaged prompts folder."""


def _conditioned_on_instruction(model: PromptEmbedder) -> None:
    if model.config.conditioning is not Conditioning.INSTRUCTION:
        raise SoftPromptError(
            f"conditioning={model.config.conditioning.value!r} writes one soft prompt per text, not per task; "
            "only conditioning='instruction' has per-task soft prompts to store"
        )


@dataclass
class SoftPrompts:
    """Soft prompts (N, K, d_p) before alignment, one per instruction, and who wrote them."""

    instructions: list[str]
    prompts: Tensor
    prompting_fingerprint: str
    prompting_model: str = ""

    def __post_init__(self) -> None:
        if self.prompts.dim() != 3 or self.prompts.shape[0] != len(self.instructions):
            raise SoftPromptError(
                f"expected one (K, d) prompt per instruction: {len(self.instructions)} instructions, "
                f"prompts of shape {tuple(self.prompts.shape)}"
            )
        if len(set(self.instructions)) != len(self.instructions):
            raise SoftPromptError("instructions must be unique")

    @property
    def width(self) -> int:
        return self.prompts.shape[-1]

    def __len__(self) -> int:
        return len(self.instructions)

    def __getitem__(self, instruction: str) -> Tensor:
        """The (K, d_p) soft prompt of one instruction."""
        try:
            return self.prompts[self.instructions.index(instruction)]
        except ValueError:
            raise KeyError(self._unknown(instruction)) from None

    def _unknown(self, instruction: str) -> str:
        shown = "; ".join(repr(i) for i in self.instructions[:5]) + (" ..." if len(self) > 5 else "")
        return f"no stored soft prompt for the instruction {instruction!r}; stored ({len(self)}): {shown}"

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"prompts": self.prompts.detach().float().contiguous().cpu()}, str(folder / TENSORS_NAME))
        meta = {
            "format_version": FORMAT_VERSION,
            "instructions": self.instructions,
            "prompting_fingerprint": self.prompting_fingerprint,
            "prompting_model": self.prompting_model,
            "num_soft_tokens": self.prompts.shape[1],
            "hidden_size": self.width,
        }
        (folder / META_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SoftPrompts:
        folder = Path(folder)
        missing = [n for n in (TENSORS_NAME, META_NAME) if not (folder / n).is_file()]
        if missing:
            raise SoftPromptError(
                f"{folder} is not a soft prompts folder (missing {', '.join(missing)}); "
                "write one with promptembedder prompts export"
            )
        meta = json.loads((folder / META_NAME).read_text())
        return cls(
            instructions=list(meta["instructions"]),
            prompts=load_file(str(folder / TENSORS_NAME))["prompts"],
            prompting_fingerprint=meta["prompting_fingerprint"],
            prompting_model=meta.get("prompting_model", ""),
        )

    # ------------------------------------------------------------------ use
    def attach(self, model: PromptEmbedder, *, check_prompting: bool = True) -> PromptEmbedder:
        """A PromptEmbedder that embeds like ``model`` but reads these prompts instead of running its Prompting LLM.

        It shares ``model``'s W and Embedding LLM (no copy). ``check_prompting`` refuses a model whose W was
        trained for another Prompting LLM's prompts (a model transferred from the same source passes).
        """
        _conditioned_on_instruction(model)
        if model.alignment.has_table:
            raise SoftPromptError(
                "this model's alignment map has a mixture table (transfer.init=mixture), which reads each soft "
                "token's mixture weights; stored prompts hold only the soft vectors. Encode with the model itself"
            )
        if self.width != model.alignment.in_features:
            raise SoftPromptError(
                f"width mismatch: these soft prompts are {self.width} wide but the model's alignment map takes "
                f"{model.alignment.in_features}; they come from another Prompting LLM"
            )
        if check_prompting:
            found = weights_fingerprint(model.prompting.model)
            if found != self.prompting_fingerprint:
                raise SoftPromptError(
                    f"these soft prompts were written by a Prompting LLM with fingerprint {self.prompting_fingerprint}"
                    f" but the model's W was trained for one with fingerprint {found}: apply them only to models "
                    "transferred from the same source (or pass check_prompting=False)"
                )
        stored = StoredPrompts(self).to(model.device)
        return PromptEmbedder(model.config, stored, model.alignment, model.embedding).eval()


class _PromptTable(nn.Module):
    """Holds the prompts as a buffer, so fingerprints and ``.to(device)`` see them like weights."""

    def __init__(self, prompts: Tensor) -> None:
        super().__init__()
        self.register_buffer("prompts", prompts.detach().float().clone())


class StoredPrompts(nn.Module):
    """Stands in for a PromptingLLM: looks each instruction's soft prompt up instead of generating it."""

    def __init__(self, prompts: SoftPrompts) -> None:
        super().__init__()
        self.model = _PromptTable(prompts.prompts)
        self.source = prompts
        self.index = {instruction: i for i, instruction in enumerate(prompts.instructions)}
        self.num_soft_tokens = prompts.prompts.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.model.prompts.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.model.prompts.device

    def forward(self, texts: list[str]) -> Tensor:
        missing = [t for t in texts if t not in self.index]
        if missing:
            raise KeyError(self.source._unknown(missing[0]))
        return self.model.prompts[[self.index[t] for t in texts]]


@torch.no_grad()
def export_soft_prompts(model: PromptEmbedder, instructions: list[str]) -> SoftPrompts:
    """Each instruction's soft prompt before alignment, generated exactly as ``model.encode`` generates it."""
    _conditioned_on_instruction(model)
    unique = list(dict.fromkeys(instructions))
    if not unique:
        raise SoftPromptError("no instructions to export")
    was_training = model.training
    model.eval()
    try:
        # One instruction at a time, as prompt_for does: the exact same computation, so the same bits.
        prompts = torch.stack([model.soft_prompts([instruction])[0].float().cpu() for instruction in unique])
    finally:
        model.train(was_training)
    return SoftPrompts(
        instructions=unique,
        prompts=prompts,
        prompting_fingerprint=weights_fingerprint(model.prompting.model),
        prompting_model=model.config.prompting_model,
    )


__all__ = ["SoftPromptError", "SoftPrompts", "StoredPrompts", "export_soft_prompts"]
