"""Known pretrained models, their one-time preparation, and loading for either role."""

from promptembedder.models.loading import load_base_model, load_causal_lm, load_tokenizer
from promptembedder.models.registry import (
    KNOWN_MODELS,
    KnownModel,
    ModelLoadError,
    ModelNotInstalledError,
    UnknownModelError,
    check_model_name,
    is_prepared,
    known_model,
    prepare,
    resolve,
)

load_backbone = load_base_model

__all__ = [
    "KNOWN_MODELS",
    "KnownModel",
    "ModelLoadError",
    "ModelNotInstalledError",
    "UnknownModelError",
    "check_model_name",
    "is_prepared",
    "known_model",
    "load_backbone",
    "load_base_model",
    "load_causal_lm",
    "load_tokenizer",
    "prepare",
    "resolve",
]
