"""A saved PromptEmbedder as a sentence-transformers model: one custom input module, as LLM embedders ship.

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer("path/to/saved", trust_remote_code=True)
    vectors = model.encode(texts, prompt="Retrieve passages that answer the question")
    vectors = model.encode(texts, prompt_name="query")          # a task saved in config.prompts
    queries, docs = model.encode_query(questions), model.encode_document(passages)

sentence-transformers hands the ``prompt`` to the input module's ``preprocess``; this module keeps it out of
the text and passes it to the PromptEmbedder as the instruction, so the prompt becomes the soft prompt, and
the vectors are those of ``PromptEmbedder.encode(texts, instruction=prompt)``. ``encode_document`` (task
"document") embeds the document side as ``config.document_prompt`` says. The folder written by
``PromptEmbedder.save_pretrained`` names this class in ``modules.json``; sentence-transformers 6 asks for
``trust_remote_code=True`` before it imports any class outside its own package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule

from promptembedder.embedder import PromptEmbedder

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": None}


class PromptEmbedderModule(InputModule):
    """The whole PromptEmbedder (Prompting LLM, W, frozen Embedding LLM) as sentence-transformers' first module."""

    save_in_root = True

    def __init__(self, model: PromptEmbedder) -> None:
        super().__init__()
        self.model = model

    # ---------------------------------------------------------------- what sentence-transformers reads
    @property
    def tokenizer(self):
        return self.model.embedding.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.model.embedding.max_length

    def get_embedding_dimension(self) -> int:
        return self.model.get_sentence_embedding_dimension()

    get_sentence_embedding_dimension = get_embedding_dimension

    def preprocess(
        self, inputs: Sequence[str], prompt: str | None = None, task: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The texts as they are, and the prompt kept aside as the instruction (never prepended)."""
        texts = [text if isinstance(text, str) else text[0] for text in inputs]
        return {"texts": texts, "instruction": prompt or None, "task": task}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        texts, instruction = features["texts"], features["instruction"]
        if features.get("task") == "document":
            vectors = self.model.embed_documents(texts, instruction)
        else:
            vectors = self.model(texts, instruction)
        features["sentence_embedding"] = vectors.float()
        return features

    # ---------------------------------------------------------------- persistence
    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.model.write_files(Path(output_path))

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PromptEmbedderModule:
        folder = Path(model_name_or_path) / subfolder
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{model_name_or_path!r} is not a local folder: a PromptEmbedder loads from a saved folder "
                "(PromptEmbedder.save_pretrained), its Embedding LLM through promptembedder.models"
            )
        model_kwargs = dict(model_kwargs or {})
        dtype = model_kwargs.get("dtype", model_kwargs.get("torch_dtype"))
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f"dtype={dtype!r} is not supported; choose one of: {', '.join(_DTYPES)}")
            dtype = _DTYPES[dtype]
        # Loaded on the CPU; SentenceTransformer moves the whole model to its device afterwards.
        return cls(PromptEmbedder.from_pretrained(folder, device="cpu", dtype=dtype))
