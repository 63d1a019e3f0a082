"""LoRA baseline: low-rank adapters (peft) on every linear layer of the Embedding LLM itself.

This is how LoRA-tuned LLM embedders are trained: queries read the instruction as plain text in front
(the tokens of ``INSTRUCTION_TEMPLATE``, ``"Instruct: {instruction}\\nQuery: "``, read exactly as the
``instruct:`` evaluation baseline reads them: in the soft prompt's slot, after any BOS, left out of the
pooling, as GritLM and Instructor pool), documents are plain text, and both sides carry gradients, because
the adapters change the backbone that embeds the documents too. Nothing is cached and nothing is frozen but
the base weights. Untrained (LoRA's B starts at zero) it is exactly the ``instruct:`` baseline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from promptembedder.baselines.common import (
    BaselineEmbedder,
    check_backbone,
    embedding_from_config,
    read_baseline_metadata,
)
from promptembedder.config import PromptEmbedderConfig
from promptembedder.embedding import EmbeddingLLM
from promptembedder.identity import INSTRUCTION_TEMPLATE

ADAPTER_DIR = "adapter"


class LoRAEmbedder(BaselineEmbedder):
    """The Embedding LLM with LoRA adapters (r, alpha, dropout, target modules as given).

    Example::

        model = LoRAEmbedder.from_config(PromptEmbedderConfig(embedding_model="gemma3-270m"), r=16)
        vectors = model.encode(["a query"], instruction="Retrieve the definition of the word")
    """

    method = "lora"

    def __init__(
        self,
        config: PromptEmbedderConfig,
        embedding: EmbeddingLLM,
        *,
        r: int = 16,
        alpha: int = 32,
        dropout: float = 0.0,
        target_modules: str | list[str] = "all-linear",
        adapter_path: str | os.PathLike | None = None,
    ) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        super().__init__(config, embedding)
        self.lora = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": target_modules}
        if adapter_path is not None:
            embedding.model = PeftModel.from_pretrained(embedding.model, str(adapter_path), is_trainable=True)
        else:
            lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules)
            embedding.model = get_peft_model(embedding.model, lora)

    @classmethod
    def from_config(
        cls,
        config: PromptEmbedderConfig,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = 0,
        **lora: Any,
    ) -> LoRAEmbedder:
        if seed is not None:
            torch.manual_seed(seed)  # LoRA's A matrices start random
        return cls(config, embedding_from_config(config, device=device, dtype=dtype), **lora)

    def train(self, mode: bool = True) -> LoRAEmbedder:
        """The frozen backbone stays in eval mode (EmbeddingLLM sees to that); the adapters' dropout follows
        ``mode``, or ``lora.dropout`` would never apply."""
        super().train(mode)
        for name, module in self.embedding.model.named_modules():
            if name.rsplit(".", 1)[-1] == "lora_dropout":
                module.train(mode)
        return self

    def settings(self) -> dict[str, Any]:
        return {"lora": dict(self.lora), "template": INSTRUCTION_TEMPLATE, "instruction_slot": "prefix, not pooled"}

    @property
    def prompts_documents(self) -> bool:
        return True  # the adapters change the document side too: documents are embedded with gradients

    def _instruction_prefix(self, instruction: str) -> torch.Tensor:
        """The instruction's tokens as input vectors (K_i, d): a hard prompt read in the soft prompt's slot."""
        head = INSTRUCTION_TEMPLATE.format(instruction=instruction)
        ids = self.embedding.tokenizer(head, add_special_tokens=False)["input_ids"]
        ids = torch.tensor(ids, dtype=torch.long, device=self.embedding.device)
        return self.embedding.model.get_input_embeddings()(ids)  # not adapted: LoRA targets linear layers

    def forward(
        self, texts: list[str], instruction: str | None = None, *, use_cache: bool = True, max_length: int | None = None
    ):
        """Query embeddings (B, d); with an instruction the queries read it as text in front."""
        if instruction is None:
            return self.embedding(texts, max_length=max_length)
        prefix = self._instruction_prefix(instruction)
        # The instruction comes on top of the query's length budget: the text is cut as a PromptEmbedder's is.
        budget = None if max_length is None else max_length + prefix.shape[0]
        return self.embedding(texts, prefix=prefix, max_length=budget)

    def embed_documents(self, texts: list[str], instruction: str | None = None, max_length: int | None = None):
        return self.embedding(texts, max_length=max_length)

    def _save_weights(self, folder: Path) -> None:
        self.embedding.model.save_pretrained(str(folder / ADAPTER_DIR))

    @classmethod
    def load_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        embedding_model: str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> LoRAEmbedder:
        folder = Path(path)
        meta = read_baseline_metadata(folder)
        config = PromptEmbedderConfig.from_dict(meta["config"])
        if embedding_model:
            config.embedding_model = embedding_model
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        embedding = embedding_from_config(config, device=device, dtype=dtype)
        check_backbone(meta, embedding, folder)
        lora = meta["settings"]["lora"]
        return cls(config, embedding, adapter_path=folder / ADAPTER_DIR, **lora).eval()
