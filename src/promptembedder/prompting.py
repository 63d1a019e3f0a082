"""The Prompting LLM: a small causal LM that writes K soft prompt vectors for an instruction.

Generation is autoregressive but never samples a token. At each step the next-token distribution is
relaxed into a vector of the model's own input-embedding space,

    p_k = relax(logits_k / tau),        s_k = p_k @ E        (E: the vocabulary's input embeddings)

and s_k is fed back as the next input. Every s_k is a differentiable function of the weights, so the
contrastive loss downstream trains the Prompting LLM through all K steps.
"""

from __future__ import annotations

import functools

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


def relaxed_entropy(logits: Tensor, temperature: float) -> Tensor:
    """Entropy in nats of softmax(logits / tau) for each row of (B, V): how many tokens a soft vector mixes.

    Near 0 the relaxation has saturated to one token: its softmax then passes almost no gradient back, so
    the Prompting LLM stops learning and every instruction can end up with the same prompt."""
    log_p = torch.log_softmax(logits / temperature, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


class _FactoredGrads:
    """Gradient factors of the Prompting LLM's weights over the K generation steps, written out once.

    Each generation step touches every weight with one row per prompt (after the first step, which reads
    the instruction): the (V, d) head makes logits h @ W^T, the relaxation makes p @ E, every linear layer
    x @ W^T. Autograd would materialise a dense gradient (an outer product) per step and use and add them
    up: K full-size matrices per weight, 2K for the vocabulary-sized ones. Here each use only records its
    two thin factors, and one GEMM over all of them writes each weight's gradient once. Same sum, fewer
    and larger operations (and K times fewer kernel launches for the weight gradients on a GPU).
    """

    def __init__(self, weights: list[Tensor]) -> None:
        self.weights = weights
        self.factors: list[list[tuple[Tensor, Tensor]]] = [[] for _ in weights]

    def add(self, index: int, left: Tensor, right: Tensor) -> None:
        self.factors[index].append((left, right))  # contributes left^T @ right, (n <= V, d)

    def materialize(self, index: int) -> Tensor | None:
        parts, self.factors[index] = self.factors[index], []
        if not parts:
            return None
        weight = self.weights[index]
        left = torch.cat([a.reshape(-1, a.shape[-1]) for a, _ in parts]).to(weight.dtype)
        right = torch.cat([b.reshape(-1, b.shape[-1]) for _, b in parts]).to(weight.dtype)
        grad = left.T @ right
        if grad.shape[0] < weight.shape[0]:  # the relaxation used only the first n rows
            grad = F.pad(grad, (0, 0, 0, weight.shape[0] - grad.shape[0]))
        return grad


class _Anchor(torch.autograd.Function):
    """Links the vocabulary matrices to every factored use through one scalar; its backward runs after all
    of them (autograd waits for every consumer of the scalar) and returns the gradients, written once."""

    @staticmethod
    def forward(ctx, store: _FactoredGrads, *weights: Tensor) -> Tensor:
        ctx.store = store
        return weights[0].new_zeros(())

    @staticmethod
    def backward(ctx, _grad: Tensor):
        return (None, *(ctx.store.materialize(i) for i in range(len(ctx.store.weights))))


class _FactoredMatmul(torch.autograd.Function):
    """``x @ weight.T`` (head) or ``x @ weight`` (relaxation) whose weight gradient is left to the anchor."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, anchor: Tensor, store: _FactoredGrads, index: int, head: bool):
        ctx.save_for_backward(x, weight)
        ctx.store, ctx.index, ctx.head = store, index, head
        return x @ weight.T if head else x @ weight

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.to(weight.dtype)
        if ctx.head:  # logits (B, V) = x (B, d) @ W^T: dW = grad^T @ x
            ctx.store.add(ctx.index, grad, x)
            grad_x = grad @ weight
        else:  # soft (B, d) = x (B, n) @ E[:n]: dE[:n] = x^T @ grad
            ctx.store.add(ctx.index, x, grad)
            grad_x = grad @ weight.T
        return grad_x, None, torch.zeros((), dtype=grad.dtype, device=grad.device), None, None, None


def _factored_linear(module: nn.Linear, anchor: Tensor, store: _FactoredGrads, index: int, x: Tensor) -> Tensor:
    """nn.Linear's forward with its weight gradient left to the anchor (one GEMM for all K steps)."""
    y = _FactoredMatmul.apply(x, module.weight.detach(), anchor, store, index, True)
    return y if module.bias is None else y + module.bias


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
    ``factored_vocab_grad`` writes the gradients of the vocabulary-sized matrices once per call instead of
    once per step and use (see :class:`_FactoredGrads`); eager mode only.
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
        factored_vocab_grad: bool = False,
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
        self.factored_vocab_grad = factored_vocab_grad
        self._compiled_generate = None
        self._plain_head: bool | None = None  # checked once: may logits be computed as hidden @ W_head^T?

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

    def forward(
        self, texts: list[str], *, return_entropy: bool = False, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, ...]:
        """Soft prompts (B, K, hidden_size) for B texts (instructions, or instruction + text); with
        ``return_entropy`` also the entropy (B, K) of each step's relaxed distribution (see
        :func:`relaxed_entropy`), with its graph, for a regulariser or a diagnosis; with ``return_weights``
        (soft, entropy, weights): the relaxed distributions (B, K, V) themselves, which a mixture-table
        alignment map reads."""
        input_ids, mask = self._left_padded(texts)
        if self._compiled_generate is not None:
            # A CUDA-graphed function reuses its output memory on the next call; a prompt kept longer (the
            # eval-time prompt cache, prompted documents and queries in one step) needs its own copy.
            soft, entropy, weights = (t.clone() for t in self._compiled_generate(input_ids, mask, return_weights))
        else:
            soft, entropy, weights = self.generate(input_ids, mask, return_weights)
        if return_weights:
            return soft, entropy, weights
        return (soft, entropy) if return_entropy else soft

    def compile_generation(
        self, mode: str | None = None, backend: str = "inductor", dynamic: bool | None = None
    ) -> None:
        """torch.compile the K-step generation (tensors in, soft prompts out); tokenisation stays eager."""
        self.factored_vocab_grad = False  # custom autograd with Python-side state: not for a traced graph
        self._compiled_generate = torch.compile(self.generate, mode=mode, backend=backend, dynamic=dynamic)

    def _checkpointing(self) -> bool:
        flag = getattr(self.model, "is_activation_checkpointing", None)
        if flag is None:  # the name before transformers 5.x renamed it
            flag = getattr(self.model, "is_gradient_checkpointing", False)
        return self.training and torch.is_grad_enabled() and bool(flag)

    def generate(self, input_ids: Tensor, mask: Tensor, weights: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Soft prompts (B, K, hidden_size), their steps' entropies (B, K) and, with ``weights``, their relaxed
        distributions (B, K, V) (else an empty (B, K, 0)), from left-padded ids and mask."""
        patched: list[nn.Module] = []
        step = self._factored_step(input_ids, mask, patched) or self._step
        try:
            if self.kv_cache and not self._checkpointing():
                return self._generate_cached(input_ids, mask, step, weights)
            return self._generate_full(input_ids, mask, step, weights)
        finally:
            for module in patched:  # the graph keeps what it needs; the modules go back to normal
                del module.forward

    def _step(self, vocab: Tensor, **inputs) -> tuple[Tensor, Tensor, object, Tensor]:
        """One generation step: the next soft token (B, d), its distribution's entropy (B,), the model's cache,
        and the distribution (B, V) itself."""
        out = self.model(logits_to_keep=1, **inputs)
        logits = out.logits[:, -1].float()
        # A head may be padded past the embedding table; those ids never were real tokens.
        logits = logits[:, : vocab.shape[0]]
        weights = relax(logits, self.relaxation, self.temperature, self.training)
        soft = weights.to(vocab.dtype) @ vocab[: logits.shape[-1]]
        return soft, relaxed_entropy(logits, self.temperature), getattr(out, _CACHE_KEY, None), weights

    def _head_is_plain(self, input_ids: Tensor, mask: Tensor) -> bool:
        """Whether logits are exactly hidden @ W_head^T (no bias, scaling or soft-capping), checked once."""
        if self._plain_head is None:
            head = self.model.get_output_embeddings()
            plain = isinstance(head, nn.Linear) and head.bias is None and hasattr(self.model, "get_decoder")
            if plain:
                devices = [self.device] if self.device.type == "cuda" else []
                # Compared in eval mode: with dropout on, two passes differ whatever the head is, and the check
                # (made once) would turn the factored path off for good. The modes are put back as they were.
                modes = {m: m.training for m in self.model.modules()}
                self.model.eval()
                try:
                    with torch.no_grad(), torch.random.fork_rng(devices=devices):  # leave the noise draws alone
                        inputs = dict(input_ids=input_ids[:1], attention_mask=mask[:1])
                        want = self.model(logits_to_keep=1, **inputs).logits[:, -1].float()
                        hidden = self.model.get_decoder()(**inputs).last_hidden_state[:, -1]
                        got = (hidden @ head.weight.T).float()
                        plain = torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()) + 1e-6)
                finally:
                    for module, mode in modes.items():
                        module.training = mode
            self._plain_head = plain
        return self._plain_head

    def _factored_step(self, input_ids: Tensor, mask: Tensor, patched: list[nn.Module]):
        """A step function whose weight gradients are written once per call (None: not possible).

        The vocabulary matrices always; the decoder's linear layers too unless checkpointing (a recomputed
        layer must record what the first pass recorded). ``patched`` receives the modules whose forward was
        swapped for the duration of the generation.
        """
        if not (self.factored_vocab_grad and self.training and torch.is_grad_enabled()):
            return None
        vocab = vocabulary_embeddings(self.model)
        head = self.model.get_output_embeddings()
        if head is None or not (vocab.requires_grad or head.weight.requires_grad):
            return None  # frozen vocabulary (LoRA): no gradient to write at all
        if not self._head_is_plain(input_ids, mask):
            return None
        weights = [vocab] if head.weight is vocab else [vocab, head.weight]
        head_index = len(weights) - 1
        decoder = self.model.get_decoder()
        linears = []
        if not self._checkpointing():
            # Exactly nn.Linear (an adapter's layer is a subclass with its own forward: left alone).
            linears = [m for m in decoder.modules() if type(m) is nn.Linear and m.weight.requires_grad]
        store = _FactoredGrads(weights + [m.weight for m in linears])
        anchor = _Anchor.apply(store, *store.weights)
        for index, module in enumerate(linears, start=len(weights)):
            module.forward = functools.partial(_factored_linear, module, anchor, store, index)
            patched.append(module)

        def step(_vocab: Tensor, **inputs) -> tuple[Tensor, Tensor, object, Tensor]:
            out = decoder(**inputs)
            hidden = out.last_hidden_state[:, -1]
            logits = _FactoredMatmul.apply(hidden, head.weight.detach(), anchor, store, head_index, True).float()
            logits = logits[:, : vocab.shape[0]]
            p = relax(logits, self.relaxation, self.temperature, self.training)
            soft = _FactoredMatmul.apply(p.to(vocab.dtype), vocab.detach()[: logits.shape[-1]], anchor, store, 0, False)
            return soft, relaxed_entropy(logits, self.temperature), getattr(out, _CACHE_KEY, None), p

        return step

    def _generate_full(self, input_ids: Tensor, mask: Tensor, step, keep: bool) -> tuple[Tensor, Tensor, Tensor]:
        # Every step re-reads the whole sequence: K forward passes over L, L+1, ..., L+K-1 positions.
        vocab = vocabulary_embeddings(self.model)
        embeds = self.model.get_input_embeddings()(input_ids)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ones = mask.new_ones((mask.shape[0], 1))
        soft_tokens, entropies, weights = [], [], []
        for _ in range(self.num_soft_tokens):
            soft, entropy, _, p = step(vocab, inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
            soft_tokens.append(soft)
            entropies.append(entropy)
            weights.append(p if keep else p[:, :0])
            embeds = torch.cat([embeds, soft[:, None]], dim=1)
            mask = torch.cat([mask, ones], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        return torch.stack(soft_tokens, dim=1), torch.stack(entropies, dim=1), torch.stack(weights, dim=1)

    def _generate_cached(self, input_ids: Tensor, mask: Tensor, step, keep: bool) -> tuple[Tensor, Tensor, Tensor]:
        # The instruction is read once; each later step reads only the previous soft token against the cached
        # keys/values (L + K - 1 positions in all instead of K*L + K(K-1)/2). The cache holds graph tensors,
        # so backward reaches the instruction's states through every step.
        vocab = vocabulary_embeddings(self.model)
        embeds = self.model.get_input_embeddings()(input_ids)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ones = mask.new_ones((mask.shape[0], 1))
        past = None
        soft_tokens, entropies, weights = [], [], []
        for _ in range(self.num_soft_tokens):
            inputs = dict(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
            soft, entropy, past, p = step(vocab, **inputs, **{_CACHE_KEY: past})
            soft_tokens.append(soft)
            entropies.append(entropy)
            weights.append(p if keep else p[:, :0])
            embeds = soft[:, None]
            mask = torch.cat([mask, ones], dim=1)
            positions = positions[:, -1:] + 1
        return torch.stack(soft_tokens, dim=1), torch.stack(entropies, dim=1), torch.stack(weights, dim=1)


@torch.no_grad()
def prompt_statistics(
    prompting: PromptingLLM, instructions: list[str], made: tuple[Tensor, Tensor] | None = None
) -> dict[str, float]:
    """How soft and how instruction-specific a Prompting LLM's prompts are, over a list of instructions.

    ``entropy``: mean nats of the K relaxed distributions (0: each step is one token). ``entropy_min``: the
    lowest of them. ``distinct``: mean over pairs of instructions of 1 - cos between their flattened prompts
    (0: every instruction gets the same prompt, as a collapsed Prompting LLM gives). ``made``: the
    instructions' (soft, entropy) from an eval-mode ``prompting(instructions, return_entropy=True)`` the
    caller already has, so they are not generated again.
    """
    if made is None:
        was_training = prompting.training
        prompting.eval()
        try:
            made = prompting(list(instructions), return_entropy=True)
        finally:
            prompting.train(was_training)
    soft, entropy = made
    flat = F.normalize(soft.float().flatten(1), dim=-1)
    n = flat.shape[0]
    cos = flat @ flat.T
    distinct = float((1 - cos).sum() / (n * (n - 1))) if n > 1 else 0.0
    return {"entropy": float(entropy.mean()), "entropy_min": float(entropy.min()), "distinct": distinct}


@torch.no_grad()
def nearest_tokens(soft: Tensor, vocab: Tensor, k: int = 3) -> tuple[Tensor, Tensor]:
    """Cosine similarity (..., k) of each soft vector (..., d) with its k nearest vocabulary rows, and their ids.

    A soft vector is a mixture p @ E; when its nearest row has cosine near 1 the mixture is (nearly) one token.
    """
    flat = F.normalize(soft.float().reshape(-1, soft.shape[-1]), dim=-1)
    cos = flat @ F.normalize(vocab.float(), dim=-1).T
    top = cos.topk(min(k, cos.shape[-1]), dim=-1)
    shape = (*soft.shape[:-1], top.values.shape[-1])
    return top.values.reshape(shape), top.indices.reshape(shape)
