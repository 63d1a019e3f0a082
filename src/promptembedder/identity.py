"""What an embedding depends on, as short hashes; and the text template that reads an instruction as text.

These sit below every model kind (PromptEmbedder, its baselines, the evaluation's encoders), which all use
them to name their outputs in caches: two encoders whose documents depend on the same things share them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

INSTRUCTION_TEMPLATE = "Instruct: {instruction}\nQuery: "
"""The E5-Mistral prompt: how the instruction-as-text baseline and the LoRA baseline read an instruction."""


def weights_digest(module: Any, sample: int = 4096) -> str:
    """sha256 over parameter names, shapes and about ``sample`` strided values per tensor (fast, yet any
    retrained or different checkpoint changes it)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        if flat.numel() > sample:
            flat = flat[:: flat.numel() // sample]
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(flat.float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def settings_fingerprint(settings: dict[str, Any], weights: str) -> str:
    """A short hash of some settings (JSON, sorted keys) and a weights digest."""
    return hashlib.sha256((json.dumps(settings, sort_keys=True) + weights).encode()).hexdigest()[:16]


def plain_document_fingerprint(weights: str, pooling: str, max_length: int, dtype: str, template: str = "") -> str:
    """What a plain (unprompted, normalised) document embedding depends on: backbone weights, pooling,
    truncation, precision and any text template. BackboneEncoder and a PromptEmbedder with plain documents
    compute it alike."""
    settings = {"documents": "plain", "pooling": pooling, "max_length": max_length, "dtype": dtype}
    if template:  # only then: fingerprints of untemplated documents stay what they were
        settings["template"] = template
    return settings_fingerprint(settings, weights)
