"""Prompt-tuning baseline: K learned input vectors per task in front of the frozen Embedding LLM's text.

Why not peft's PromptTuning / MultitaskPromptTuning (checked against peft 0.21): for a base model
(``PeftModelForFeatureExtraction``) peft prepends the virtual tokens in front of *everything*, before the
BOS token and before left padding, and drops ``position_ids`` with a warning, so a left-padded backbone
(Gemma) embeds a text differently depending on its batch; ``PromptTuningConfig`` holds one prompt for all
tasks, and its feature-extraction forward calls ``get_prompt`` without ``task_ids``, which
MultitaskPromptTuning requires (its per-task prompts are moreover the shared prompt times a rank-r task
matrix, not K free vectors per task). So the prompts here are a plain ``ParameterDict`` read through the
core's EmbeddingLLM prefix mechanism: the same placement (after BOS), padding, positions, truncation and
pooling as a PromptEmbedder's soft prompt, which leaves only the method different.

Each training instruction owns K vectors, initialised from the Embedding LLM's input embeddings of the
instruction's first K tokens (peft's ``PromptTuningInit.TEXT``). An instruction never seen in training (a
held-out task) gets the mean of the learned prompts: static prompts cannot do better without training.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from promptembedder.baselines.common import (
    BaselineEmbedder,
    check_backbone,
    embedding_from_config,
    read_baseline_metadata,
)
from promptembedder.config import DocumentPrompt, PromptEmbedderConfig
from promptembedder.embedding import EmbeddingLLM
from promptembedder.identity import plain_document_fingerprint
from promptembedder.prompting import vocabulary_embeddings

logger = logging.getLogger(__name__)
PROMPTS_NAME = "prompts.safetensors"


def _key(instruction: str) -> str:
    # ParameterDict keys must be valid attribute names: no dots, no spaces.
    return "t" + hashlib.sha1(instruction.encode()).hexdigest()[:16]


class PromptTuningEmbedder(BaselineEmbedder):
    """Per-task soft prompts (K, d_e) on the frozen Embedding LLM; documents plain or prompted per the config.

    Example::

        model = PromptTuningEmbedder.from_config(config, instructions=["Retrieve the definition of the word"])
        vectors = model.encode(["a word"], instruction="Retrieve the definition of the word")
    """

    method = "prompt-tuning"

    def __init__(
        self, config: PromptEmbedderConfig, embedding: EmbeddingLLM, instructions: list[str], *, init: bool = True
    ) -> None:
        super().__init__(config, embedding)
        if not instructions:
            raise ValueError("prompt tuning needs the training instructions: one prompt is learned per instruction")
        self.instructions = sorted(set(instructions))
        width, k = embedding.hidden_size, config.num_soft_tokens
        self.prompts = nn.ParameterDict(
            {_key(i): nn.Parameter(torch.zeros(k, width, device=embedding.device)) for i in self.instructions}
        )
        if init:
            self._init_from_text()
        self._unseen_warned: set[str] = set()

    @torch.no_grad()
    def _init_from_text(self) -> None:
        vocab = vocabulary_embeddings(self.embedding.model).float()
        k = self.config.num_soft_tokens
        for instruction in self.instructions:
            ids = self.embedding.tokenizer(instruction, add_special_tokens=False)["input_ids"] or [0]
            ids = (ids * k)[:k]  # cycled when the instruction is shorter than K tokens
            self.prompts[_key(instruction)].copy_(vocab[torch.tensor(ids, device=vocab.device)])

    @classmethod
    def from_config(
        cls,
        config: PromptEmbedderConfig,
        *,
        instructions: list[str],
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = 0,
    ) -> PromptTuningEmbedder:
        if seed is not None:
            torch.manual_seed(seed)
        return cls(config, embedding_from_config(config, device=device, dtype=dtype), instructions)

    def settings(self) -> dict[str, Any]:
        return {"instructions": list(self.instructions), "unseen": "mean of the learned prompts"}

    def prompt_for(self, instruction: str) -> Tensor:
        key = _key(instruction)
        if key in self.prompts:
            return self.prompts[key]
        if instruction not in self._unseen_warned:
            self._unseen_warned.add(instruction)
            logger.info("prompt tuning: no prompt was learned for %r; using the mean of the learned ones", instruction)
        return torch.stack(list(self.prompts.values())).mean(0)

    @property
    def prompts_documents(self) -> bool:
        return self.config.document_prompt is DocumentPrompt.PROMPTED

    def forward(
        self, texts: list[str], instruction: str | None = None, *, use_cache: bool = True, max_length: int | None = None
    ) -> Tensor:
        prefix = None if instruction is None else self.prompt_for(instruction)
        return self.embedding(texts, prefix=prefix, max_length=max_length)

    def embed_documents(self, texts: list[str], instruction: str | None = None, max_length: int | None = None):
        return self(texts, instruction if self.prompts_documents else None, max_length=max_length)

    def document_fingerprint(self) -> str | None:
        if self.prompts_documents:
            return None
        e = self.embedding
        pooling = str(getattr(e.pooling, "value", e.pooling))
        return plain_document_fingerprint(self._embedding_fingerprint, pooling, e.max_length, str(e.dtype))

    def _save_weights(self, folder: Path) -> None:
        stacked = torch.stack([self.prompts[_key(i)].detach() for i in self.instructions]).float().cpu()
        save_file({"prompts": stacked.contiguous()}, str(folder / PROMPTS_NAME))

    @classmethod
    def load_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        embedding_model: str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> PromptTuningEmbedder:
        folder = Path(path)
        meta = read_baseline_metadata(folder)
        config = PromptEmbedderConfig.from_dict(meta["config"])
        if embedding_model:
            config.embedding_model = embedding_model
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        embedding = embedding_from_config(config, device=device, dtype=dtype)
        check_backbone(meta, embedding, folder)
        instructions = meta["settings"]["instructions"]
        model = cls(config, embedding, instructions, init=False)
        stacked = load_file(str(folder / PROMPTS_NAME))["prompts"]
        with torch.no_grad():
            for instruction, prompt in zip(instructions, stacked, strict=True):
                model.prompts[_key(instruction)].copy_(prompt)
        return model.eval()
