"""Contrastive training of the Prompting LLM and the alignment map (the Embedding LLM stays frozen)."""

from promptembedder.training.config import ConfigError, TrainConfig, load_config
from promptembedder.training.loss import InfoNCELoss, grad_cache_backward
from promptembedder.training.trainer import Trainer

__all__ = ["ConfigError", "InfoNCELoss", "TrainConfig", "Trainer", "grad_cache_backward", "load_config"]
