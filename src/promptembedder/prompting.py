"""The Prompting LLM: a small causal LM that writes K soft prompt vectors for an instruction.

Generation is autoregressive but never samples a token. At each step the next-token distribution is
relaxed into a vector of the model's own input-embedding space,

    p_k = relax(logits_k / tau),        s_k = p_k @ E        (E: the vocabulary's input embeddings)

and s_k is fed back as the next input. Every s_k is a differentiable function of the weights, so the
contrastive loss downstream trains the Prompting LLM through all K steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from promptembedder.config import Relaxation


def vocabulary_embeddings(model: PreTrainedModel) -> Tensor:
    """The input vector of every token, as the model itself would build it (Gemma scales by sqrt(width))."""
    embedding = model.get_input_embeddings()
    scale = getattr(embedding, "embed_scale", None)
    weight = embedding.weight
    return weight * scale.to(weight.dtype) if scale is not None else weight


def relax(logits: Tensor, relaxation: Relaxation, temperature: float, training: bool) -> Tensor:
    """Turn logits (B, V) into weights over the vocabulary that gradients can pass through."""
    if relaxation is Relaxation.GUMBEL and training:
        return F.gumbel_softmax(logits, tau=temperature, hard=False, dim=-1)
    soft = torch.softmax(logits / temperature, dim=-1)
    if relaxation is Relaxation.STRAIGHT_THROUGH:
        hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
        return hard + soft - soft.detach()
    return soft


class PromptingLLM(nn.Module):
    """Generates ``num_soft_tokens`` vectors of width ``hidden_size`` for each input text.

    Example::

        prompting = PromptingLLM(causal_lm, tokenizer, num_soft_tokens=5)
        soft = prompting(["Retrieve the definition of the word"])   # (1, 5, hidden_size)
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        num_soft_tokens: int = 5,
        relaxation: Relaxation | str = Relaxation.SOFTMAX,
        temperature: float = 1.0,
        max_length: int = 64,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.num_soft_tokens = num_soft_tokens
        self.relaxation = Relaxation(relaxation)
        self.temperature = temperature
        self.max_length = max_length

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def _left_padded(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        # Left padding puts every row's last real token at the same position, so each generated vector is
        # appended at one column for the whole batch.
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
        width = max(len(row) for row in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            if row:
                input_ids[i, width - len(row) :] = torch.tensor(row)
                mask[i, width - len(row) :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def forward(self, texts: list[str]) -> Tensor:
        """Soft prompts (B, K, hidden_size) for B texts (instructions, or instruction + text)."""
        input_ids, mask = self._left_padded(texts)
        vocab = vocabulary_embeddings(self.model)
        embeds = self.model.get_input_embeddings()(input_ids)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ones = mask.new_ones((mask.shape[0], 1))
        soft_tokens = []
        for _ in range(self.num_soft_tokens):
            out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            logits = out.logits[:, -1].float()
            # A head may be padded past the embedding table; those ids never were real tokens.
            logits = logits[:, : vocab.shape[0]]
            weights = relax(logits, self.relaxation, self.temperature, self.training)
            soft = weights.to(vocab.dtype) @ vocab[: logits.shape[-1]]
            soft_tokens.append(soft)
            embeds = torch.cat([embeds, soft[:, None]], dim=1)
            mask = torch.cat([mask, ones], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        return torch.stack(soft_tokens, dim=1)
