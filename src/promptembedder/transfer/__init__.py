"""Transfer to a new Embedding LLM by training only the alignment map, and soft prompts that travel."""

from promptembedder.training.config import TransferConfig, TransferInit, TransferPrompting
from promptembedder.transfer.build import (
    FrozenPromptingLLM,
    TransferError,
    build_transfer_model,
    check_takes_inputs_embeds,
    compose_alignment,
    fit_backbone_map,
    prepare_transfer_config,
    resolve_source,
)
from promptembedder.transfer.prompts import SoftPromptError, SoftPrompts, StoredPrompts, export_soft_prompts

__all__ = [
    "FrozenPromptingLLM",
    "SoftPromptError",
    "SoftPrompts",
    "StoredPrompts",
    "TransferConfig",
    "TransferError",
    "TransferInit",
    "TransferPrompting",
    "build_transfer_model",
    "check_takes_inputs_embeds",
    "compose_alignment",
    "export_soft_prompts",
    "fit_backbone_map",
    "prepare_transfer_config",
    "resolve_source",
]
