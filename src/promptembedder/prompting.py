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
from transformers.modeling_outputs import CausalLMOutputWithPast

from promptembedder.config import Relaxation

# transformers renamed ``past_key_values`` to ``cache`` during 5.x; speak whichever this version knows.
_CACHE_KEY = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


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

    Speed options, none of which changes the result beyond float rounding (tests check each):
    ``kv_cache`` keeps the keys and values of earlier positions through the K steps (with their graph, so
    gradients still reach every step) instead of re-reading the whole sequence each step; it is skipped
    while gradient checkpointing recomputes the layers, which cannot replay a cache. ``pad_to_multiple_of``
    left-pads the instructions to a fixed width (padding is masked out), so a compiled or CUDA-graphed
    generation sees one shape. :meth:`compile_generation` wraps the generation in ``torch.compile``.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        num_soft_tokens: int = 5,
        relaxation: Relaxation | str = Relaxation.SOFTMAX,
        temperature: float = 1.0,
        max_length: int = 64,
        *,
        kv_cache: bool = False,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.num_soft_tokens = num_soft_tokens
        self.relaxation = Relaxation(relaxation)
        self.temperature = temperature
        self.max_length = max_length
        self.kv_cache = kv_cache
        self.pad_to_multiple_of = pad_to_multiple_of
        self._compiled_generate = None

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
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
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
        if self._compiled_generate is not None:
            # A CUDA-graphed function reuses its output memory on the next call; a prompt kept longer (the
            # eval-time prompt cache, prompted documents and queries in one step) needs its own copy.
            return self._compiled_generate(input_ids, mask).clone()
        return self.generate(input_ids, mask)

    def compile_generation(
        self, mode: str | None = None, backend: str = "inductor", dynamic: bool | None = None
    ) -> None:
        """torch.compile the K-step generation (tensors in, soft prompts out); tokenisation stays eager."""
        self._compiled_generate = torch.compile(self.generate, mode=mode, backend=backend, dynamic=dynamic)

    def _checkpointing(self) -> bool:
        flag = getattr(self.model, "is_activation_checkpointing", None)
        if flag is None:  # the name before transformers 5.x renamed it
            flag = getattr(self.model, "is_gradient_checkpointing", False)
        return self.training and torch.is_grad_enabled() and bool(flag)

    def generate(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        """Soft prompts (B, K, hidden_size) from left-padded ids and their attention mask."""
        if self.kv_cache and not self._checkpointing():
            return self._generate_cached(input_ids, mask)
        return self._generate_full(input_ids, mask)

    def _next_soft_token(self, logits: Tensor, vocab: Tensor) -> Tensor:
        logits = logits[:, -1].float()
        # A head may be padded past the embedding table; those ids never were real tokens.
        logits = logits[:, : vocab.shape[0]]
        weights = relax(logits, self.relaxation, self.temperature, self.training)
        return weights.to(vocab.dtype) @ vocab[: logits.shape[-1]]

    def _generate_full(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        # Every step re-reads the whole sequence: K forward passes over L, L+1, ..., L+K-1 positions.
        vocab = vocabulary_embeddings(self.model)
        embeds = self.model.get_input_embeddings()(input_ids)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ones = mask.new_ones((mask.shape[0], 1))
        soft_tokens = []
        for _ in range(self.num_soft_tokens):
            out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            soft = self._next_soft_token(out.logits, vocab)
            soft_tokens.append(soft)
            embeds = torch.cat([embeds, soft[:, None]], dim=1)
            mask = torch.cat([mask, ones], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        return torch.stack(soft_tokens, dim=1)

    def _generate_cached(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        # The instruction is read once; each later step reads only the previous soft token against the cached
        # keys/values (L + K - 1 positions in all instead of K*L + K(K-1)/2). The cache holds graph tensors,
        # so backward reaches the instruction's states through every step.
        vocab = vocabulary_embeddings(self.model)
        embeds = self.model.get_input_embeddings()(input_ids)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ones = mask.new_ones((mask.shape[0], 1))
        past = None
        soft_tokens = []
        for _ in range(self.num_soft_tokens):
            out = self.model(
                inputs_embeds=embeds,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{_CACHE_KEY: past},
            )
            past = getattr(out, _CACHE_KEY)
            soft = self._next_soft_token(out.logits, vocab)
            soft_tokens.append(soft)
            embeds = soft[:, None]
            mask = torch.cat([mask, ones], dim=1)
            positions = positions[:, -1:] + 1
        return torch.stack(soft_tokens, dim=1)
