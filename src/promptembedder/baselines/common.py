"""What the two baselines share: the PromptEmbedder interface the Trainer and the evaluation use, and saving.

A baseline is an ``nn.Module`` around the core's :class:`EmbeddingLLM` (same tokenisation, truncation,
padding and pooling as a PromptEmbedder, so only the method differs) that the Trainer drives exactly like a
PromptEmbedder:

- ``model(texts, instruction, max_length=...)`` -> (B, d) query embeddings with gradients;
- ``prompts_documents`` says whether documents need gradients (then ``embed_documents`` runs with them);
- ``trainable_parameters()`` names what the optimiser gets;
- ``encode`` / ``encode_queries`` / ``encode_documents`` / ``fingerprint`` for the evaluation;
- ``save_pretrained`` / ``load_pretrained`` (see :func:`promptembedder.baselines.load_pretrained`).

A saved baseline is a folder with ``baseline_config.json`` (method, settings, the Embedding LLM's name and
fingerprint) and the method's weights; the frozen Embedding LLM itself is never copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from promptembedder.atomic import replace_folder
from promptembedder.config import PromptEmbedderConfig
from promptembedder.embedder import EmbeddingModelMismatchError, PromptEmbedder, weights_fingerprint
from promptembedder.embedding import EmbeddingLLM

BASELINE_CONFIG = "baseline_config.json"
FORMAT_VERSION = 1


class NotABaselineError(ValueError):
    """A folder without a saved baseline in it."""


class BaselineEmbedder(nn.Module):
    """Base class: an Embedding LLM plus whatever the method trains; subclasses define ``forward``."""

    method: str = ""

    def __init__(self, config: PromptEmbedderConfig, embedding: EmbeddingLLM, base_fingerprint: str | None = None):
        super().__init__()
        self.config = config
        self.embedding = embedding
        # The frozen backbone's own fingerprint, taken before any adapter is attached to it.
        self._embedding_fingerprint = base_fingerprint or weights_fingerprint(embedding.model)
        self._fingerprint: tuple[tuple, str] | None = None

    # ---------------------------------------------------------------- what the Trainer uses
    @property
    def prompts_documents(self) -> bool:
        """True when documents must be embedded with gradients (and the instruction) during training."""
        raise NotImplementedError

    def embed_documents(self, texts: list[str], instruction: str | None = None, max_length: int | None = None):
        raise NotImplementedError

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def settings(self) -> dict[str, Any]:
        """Method-specific settings saved beside the config (and part of the fingerprint)."""
        return {}

    # ---------------------------------------------------------------- what the evaluation uses
    @property
    def device(self) -> torch.device:
        return self.embedding.device

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding.output_dim

    # The same batching, ordering and normalisation as a PromptEmbedder's (they only call self(...),
    # self.embed_documents(...), train/eval and the dimension).
    encode = PromptEmbedder.encode
    encode_queries = PromptEmbedder.encode_queries
    encode_documents = PromptEmbedder.encode_documents

    def embedding_fingerprint(self) -> str:
        return self._embedding_fingerprint

    def _weights_version(self) -> tuple:
        return tuple((id(p), p._version) for p in self.trainable_parameters().values())

    def fingerprint(self) -> str:
        """Changes whenever the settings or a trained weight change (tracked by tensor versions)."""
        key = self._weights_version()
        if self._fingerprint is None or self._fingerprint[0] != key:
            digest = hashlib.sha256(self.method.encode())
            digest.update(json.dumps({"config": self.config.to_dict(), **self.settings()}, sort_keys=True).encode())
            digest.update(self._embedding_fingerprint.encode())
            for name, p in sorted(self.trainable_parameters().items()):
                digest.update(name.encode())
                digest.update(p.detach().float().cpu().numpy().tobytes())
            self._fingerprint = (key, digest.hexdigest()[:16])
        return self._fingerprint[1]

    def document_fingerprint(self) -> str | None:
        """What a document embedding depends on when it is the frozen backbone's own (else None)."""
        return None

    # ---------------------------------------------------------------- persistence
    def _save_weights(self, folder: Path) -> None:
        raise NotImplementedError

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write settings and trained weights; the Embedding LLM is recorded by name and fingerprint.

        Built aside and swapped in whole, like a PromptEmbedder's save.
        """
        target = Path(path).resolve()
        if target.exists() and any(target.iterdir()) and not (target / BASELINE_CONFIG).is_file():
            raise FileExistsError(f"{target} exists and is not a saved baseline; choose an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.saving-"))
        try:
            self._save_weights(staging)
            meta = {
                "format_version": FORMAT_VERSION,
                "method": self.method,
                "config": self.config.to_dict(),
                "settings": self.settings(),
                "embedding_model": {
                    "name": self.config.embedding_model,
                    "fingerprint": self._embedding_fingerprint,
                    "hidden_size": self.embedding.hidden_size,
                },
            }
            (staging / BASELINE_CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True))
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def read_baseline_metadata(path: str | os.PathLike) -> dict[str, Any]:
    config_file = Path(path) / BASELINE_CONFIG
    if not config_file.is_file():
        raise NotABaselineError(f"{path} is not a saved baseline (no {BASELINE_CONFIG})")
    return json.loads(config_file.read_text())


def embedding_from_config(
    config: PromptEmbedderConfig, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> EmbeddingLLM:
    """The core's EmbeddingLLM exactly as a PromptEmbedder with this config would build it."""
    from promptembedder.models import load_base_model

    model, tokenizer = load_base_model(config.embedding_model, device=device, dtype=dtype)
    return EmbeddingLLM.from_config(model, tokenizer, config)


def check_backbone(meta: dict[str, Any], embedding: EmbeddingLLM, folder: Path) -> str:
    """The loaded backbone's fingerprint; an error if it is not the one the baseline was trained on."""
    found = weights_fingerprint(embedding.model)
    recorded = meta["embedding_model"]
    if found != recorded["fingerprint"]:
        raise EmbeddingModelMismatchError(
            f"The Embedding LLM {embedding.name!r} (fingerprint {found}) differs from the one the baseline in "
            f"{folder} was trained on ({recorded['name']!r}, fingerprint {recorded['fingerprint']})."
        )
    return found
