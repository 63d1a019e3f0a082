"""The Embedding LLM: a frozen transformer that reads [soft prompt; text] and pools one vector.

Nothing here ever trains: every parameter has ``requires_grad=False``, the module stays in eval mode
even under ``.train()``, and it is never handed to an optimiser. Gradients still flow *through* it into the
soft prompt, which is all the training needs.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from promptembedder.config import Pooling


class EmbeddingLLM(nn.Module):
    """Frozen backbone + pooling.

    Example::

        backbone = EmbeddingLLM(model, tokenizer, pooling="last")
        vectors = backbone(["a sentence"], prefix=aligned_soft_prompt)   # (1, hidden_size)
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        pooling: Pooling | str = Pooling.LAST,
        normalize: bool = True,
        max_length: int = 512,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if not hasattr(model, "get_input_embeddings") or model.get_input_embeddings() is None:
            raise TypeError(f"{type(model).__name__} has no input embeddings, so it cannot read a soft prompt")
        self.model = model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.pooling = Pooling(pooling)
        self.normalize = normalize
        model_max = getattr(model.config, "max_position_embeddings", None) or max_length
        self.max_length = min(max_length, model_max)
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self._warned_truncation = False
        super().train(False)

    @classmethod
    def from_name(
        cls, name_or_path: str, *, device: str | None = None, dtype: torch.dtype | None = None, **kwargs
    ) -> EmbeddingLLM:
        from promptembedder.models import load_base_model

        model, tokenizer = load_base_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, name=name_or_path, **kwargs)

    def train(self, mode: bool = True) -> EmbeddingLLM:
        return super().train(False)  # frozen: dropout and the like stay off whatever the caller's mode

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def _leading_special(self, ids: list[int]) -> int:
        """1 if the tokenizer put a BOS/CLS first: the soft prompt goes after it, as the model expects it."""
        first = {self.tokenizer.bos_token_id, self.tokenizer.cls_token_id} - {None}
        return int(bool(ids) and ids[0] in first)

    def tokenize(self, texts: list[str], num_prefix: int = 0, max_length: int | None = None) -> list[list[int]]:
        budget = min(max_length or self.max_length, self.max_length) - num_prefix
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        if any(len(row) > budget for row in ids):
            if not self._warned_truncation:
                warnings.warn(
                    f"Some texts are longer than {budget} tokens (max_length={max_length or self.max_length} minus "
                    f"{num_prefix} soft tokens) and were truncated.",
                    stacklevel=3,
                )
                self._warned_truncation = True
            ids = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=budget)["input_ids"]
        # An empty text with no special tokens would be a row of nothing; read one end-of-text token instead.
        filler = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.pad_token_id
        return [row or [filler] for row in ids]

    def forward(self, texts: list[str], prefix: Tensor | None = None, max_length: int | None = None) -> Tensor:
        """Pooled embeddings (B, hidden_size) of ``texts``, each read after its ``prefix`` (K, d) or (B, K, d)."""
        num_prefix = 0 if prefix is None else prefix.shape[-2]
        if prefix is not None and prefix.dim() == 2:
            prefix = prefix.expand(len(texts), *prefix.shape)
        if prefix is not None and prefix.shape[-1] != self.hidden_size:
            raise ValueError(f"soft prompt width {prefix.shape[-1]} != Embedding LLM width {self.hidden_size}")
        ids = self.tokenize(texts, num_prefix, max_length)
        embed = self.model.get_input_embeddings()
        rows, text_masks = [], []
        for i, row in enumerate(ids):
            tokens = embed(torch.tensor(row, dtype=torch.long, device=self.device))
            head = self._leading_special(row)
            parts = [tokens[:head]]
            if prefix is not None:
                parts.append(prefix[i].to(tokens.dtype))
            parts.append(tokens[head:])
            rows.append(torch.cat(parts, dim=0))
            # A causal model's BOS state does not depend on the text; mean pooling leaves it out.
            skip_bos = head and row[0] == self.tokenizer.bos_token_id
            text_mask = [0] * head + [0] * num_prefix + [1] * (len(row) - head)
            if head and not skip_bos:
                text_mask[0] = 1
            text_masks.append(text_mask)
        inputs, mask, pool_mask = self._pad(rows, text_masks)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self.model(inputs_embeds=inputs, attention_mask=mask, position_ids=positions).last_hidden_state
        pooled = self._pool(hidden.float(), mask, pool_mask)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def _pad(self, rows: list[Tensor], text_masks: list[list[int]]) -> tuple[Tensor, Tensor, Tensor]:
        width = max(r.shape[0] for r in rows)
        left = self.tokenizer.padding_side == "left"
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        pool_mask = torch.zeros((len(rows), width), dtype=torch.float32, device=self.device)
        padded = []
        for i, (row, text_mask) in enumerate(zip(rows, text_masks, strict=False)):
            n = row.shape[0]
            span = slice(width - n, width) if left else slice(0, n)
            mask[i, span] = 1
            pool_mask[i, span] = torch.tensor(text_mask, dtype=torch.float32, device=self.device)
            pad = row.new_zeros((width - n, row.shape[-1]))
            padded.append(torch.cat([pad, row]) if left else torch.cat([row, pad]))
        inputs = torch.stack(padded)
        return inputs, mask, pool_mask

    def _pool(self, hidden: Tensor, mask: Tensor, pool_mask: Tensor) -> Tensor:
        if self.pooling is Pooling.LAST:
            # The last real token, whichever side the padding is on.
            positions = torch.arange(mask.shape[1], device=mask.device)
            last = (positions * mask).argmax(dim=1)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        weights = pool_mask / pool_mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return torch.einsum("bld,bl->bd", hidden, weights)
