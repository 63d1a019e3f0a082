"""PromptEmbedder: instruction-aware text embeddings from a frozen LLM steered by generated soft prompts."""

import logging

from promptembedder.alignment import AlignmentMap
from promptembedder.config import (
    AlignmentInit,
    Conditioning,
    DocumentPrompt,
    Pooling,
    PromptEmbedderConfig,
    Relaxation,
    SimilarityFunction,
)
from promptembedder.embedder import (
    EmbeddingModelMismatchError,
    EmbeddingModelNotFoundError,
    NotAPromptEmbedderError,
    PromptEmbedder,
)
from promptembedder.embedding import EmbeddingLLM
from promptembedder.prompting import PromptingLLM

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AlignmentInit",
    "AlignmentMap",
    "Conditioning",
    "DocumentPrompt",
    "EmbeddingLLM",
    "EmbeddingModelMismatchError",
    "EmbeddingModelNotFoundError",
    "NotAPromptEmbedderError",
    "Pooling",
    "PromptEmbedder",
    "PromptEmbedderConfig",
    "PromptingLLM",
    "Relaxation",
    "SimilarityFunction",
]
