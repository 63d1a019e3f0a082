"""The Embedding LLM: a frozen transformer that reads [soft prompt; text] and pools one vector.

Nothing here ever trains: every parameter has ``requires_grad=False``, the module stays in eval mode
even under ``.train()``, and it is never handed to an optimiser. Gradients still flow *through* it into the
soft prompt, which is all the training needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from promptembedder.config import Pooling, PromptPosition, resolve_text_template

# Per thread (and per asyncio task): one caller asking for raw pooled vectors never affects another's call.
_RAW_POOLING: contextvars.ContextVar[bool] = contextvars.ContextVar("promptembedder_raw_pooling", default=False)
# The deep prompt of the forward this thread is running: (the EmbeddingLLM's id, slot indices, offsets (L, B, K, d)).
_DEEP_OFFSETS: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("promptembedder_deep", default=None)


@contextlib.contextmanager
def raw_pooling() -> Iterator[None]:
    """Within this block every EmbeddingLLM of this thread returns pooled vectors unnormalised.

    ``encode`` uses it so that it can honour ``normalize=False`` and normalise *after* ``truncate_dim``
    whatever wrapper (a PromptEmbedder, a baseline) calls the Embedding LLM, without touching shared state.
    """
    token = _RAW_POOLING.set(True)
    try:
        yield
    finally:
        _RAW_POOLING.reset(token)


def enable_checkpointing(model: nn.Module) -> None:
    """Non-reentrant activation checkpointing on a transformers model, under this version's name for it."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


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
        pooling: Pooling | str = Pooling.MEAN,
        normalize: bool = True,
        max_length: int = 512,
        name: str | None = None,
        prompt_position: PromptPosition | str = PromptPosition.PREFIX,
        text_template: str = "",
        deep_prompt: bool = False,
    ) -> None:
        super().__init__()
        if not hasattr(model, "get_input_embeddings") or model.get_input_embeddings() is None:
            raise TypeError(f"{type(model).__name__} has no input embeddings, so it cannot read a soft prompt")
        self.model = model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.pooling = Pooling(pooling)
        self.prompt_position = PromptPosition(prompt_position)
        self.text_template = resolve_text_template(text_template)
        head, _, tail = self.text_template.partition("{text}")
        # Room the template takes (2: tokens that may merge at its seams with the text), so a long text is cut
        # to fit and the template, whose last words are what a last-token read-out reads, never is.
        self._template_tokens = (
            len(tokenizer(head + tail, add_special_tokens=False)["input_ids"]) + 2 if head + tail else 0
        )
        self.normalize = normalize
        model_max = getattr(model.config, "max_position_embeddings", None) or max_length
        self.max_length = min(max_length, model_max)
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self._warned_truncation = False
        self._checkpointing = False
        # Deep prompts: the layers before which a prompt's offsets are added (every layer but the first, whose
        # input already is the prompt itself).
        self._deep_targets = self._layers()[1:] if deep_prompt else []
        self._install_deep_hooks()
        super().train(False)

    @classmethod
    def from_name(
        cls, name_or_path: str, *, device: str | None = None, dtype: torch.dtype | None = None, **kwargs
    ) -> EmbeddingLLM:
        from promptembedder.models import load_base_model

        model, tokenizer = load_base_model(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, name=name_or_path, **kwargs)

    @classmethod
    def from_config(cls, model, tokenizer, config) -> EmbeddingLLM:
        """Wrap a loaded backbone with a PromptEmbedderConfig's pooling, normalisation, length and name."""
        return cls(
            model,
            tokenizer,
            pooling=config.pooling,
            normalize=config.normalize,
            max_length=config.max_length,
            name=config.embedding_model,
            prompt_position=config.prompt_position,
            text_template=config.text_template,
            deep_prompt=config.deep_prompt,
        )

    def train(self, mode: bool = True) -> EmbeddingLLM:
        super().train(False)  # frozen: dropout and the like stay off whatever the caller's mode
        self._checkpoint_layers(mode)
        return self

    def _layers(self) -> list[nn.Module]:
        """The backbone's transformer layers, in order: the one ModuleList as long as ``num_hidden_layers``."""
        count = getattr(self.model.config, "num_hidden_layers", None)
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and count and len(module) == count:
                return list(module)
        raise TypeError(
            f"{type(self.model).__name__}: no list of {count} transformer layers found, so deep prompts cannot "
            "reach them; use deep_prompt=false"
        )

    @property
    def deep_layers(self) -> int:
        """How many layers read a deep prompt's offsets (0 without deep prompts)."""
        return len(self._deep_targets)

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def output_dim(self) -> int:
        """The width of a pooled embedding: the hidden size, twice it for ``mean+last``."""
        return self.hidden_size * (2 if self.pooling is Pooling.MEAN_LAST else 1)

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

    def wrap(self, texts: list[str], budget: int | None = None) -> list[str]:
        """Each text inside ``text_template``, cut so that the whole fits ``budget`` tokens (default max_length)."""
        budget = self.max_length if budget is None else budget
        room = max(budget - self._template_tokens - 2, 1)  # 2: BOS/CLS and EOS/SEP the tokenizer may add
        out = []
        for text, ids in zip(texts, self.tokenizer(texts, add_special_tokens=False)["input_ids"], strict=True):
            if len(ids) > room:
                text = self.tokenizer.decode(ids[:room])
                self._warn_truncation(f"Some texts are longer than the {room} tokens text_template leaves them")
            out.append(self.text_template.replace("{text}", text))
        return out

    def _warn_truncation(self, message: str) -> None:
        if not self._warned_truncation:
            warnings.warn(f"{message} and were truncated.", stacklevel=4)
            self._warned_truncation = True

    def tokenize(self, texts: list[str], num_prefix: int = 0, max_length: int | None = None) -> list[list[int]]:
        limit = min(max_length or self.max_length, self.max_length)
        budget = limit - num_prefix
        if self.text_template:
            texts = self.wrap(texts, budget)
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        if any(len(row) > budget for row in ids):
            self._warn_truncation(
                f"Some texts are longer than {budget} tokens (max_length={limit} minus {num_prefix} soft tokens)"
            )
            ids = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=budget)["input_ids"]
        # An empty text with no special tokens would be a row of nothing; read one end-of-text token instead.
        filler = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.pad_token_id
        return [row or [filler] for row in ids]

    def forward(self, texts: list[str], prefix: Tensor | None = None, max_length: int | None = None) -> Tensor:
        """Pooled embeddings (B, hidden_size) of ``texts``, each read after its ``prefix`` (K, d) or (B, K, d)."""
        if prefix is not None and prefix.dim() == 2:
            prefix = prefix.expand(len(texts), *prefix.shape)
        if prefix is not None and prefix.shape[-1] != self.hidden_size:
            raise ValueError(f"soft prompt width {prefix.shape[-1]} != Embedding LLM width {self.hidden_size}")
        prefix, offsets = self._split_deep(prefix)
        num_prefix = 0 if prefix is None else prefix.shape[-2]
        ids = self.tokenize(texts, num_prefix, max_length)
        token_ids, mask, pool_mask, prefix_slots = self._layout(ids, num_prefix)
        # One lookup for the whole batch, then the soft prompt scattered into its slots (after any BOS/CLS):
        # a fixed handful of ops whatever the batch size, where a row-by-row build costs several per row.
        inputs = self.model.get_input_embeddings()(token_ids)
        if prefix is not None:
            inputs = inputs.masked_scatter(prefix_slots[..., None], prefix.to(inputs.dtype).contiguous())
        inputs = inputs.masked_fill(~mask.bool()[..., None], 0.0)  # padding reads zeros
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # use_cache=False: one read of the whole text, so a KV cache is only memory (and, for a decoder under
        # training, a copy of every layer's keys and values held alive until backward).
        with self._deep_offsets(offsets, prefix_slots):
            hidden = self.model(
                inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=False
            ).last_hidden_state
        pooled = self._pool(hidden.float(), mask, pool_mask)
        return F.normalize(pooled, dim=-1) if self.normalize and not _RAW_POOLING.get() else pooled

    def _split_deep(self, prefix: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """A deep prompt's rows (B, (1 + L) K, d) -> the K the first layer reads, and the offsets (L, B, K, d)."""
        if prefix is None or not self._deep_targets:
            return prefix, None
        layers = 1 + len(self._deep_targets)
        if prefix.shape[-2] % layers:
            raise ValueError(
                f"a deep prompt for this Embedding LLM has (1 + {layers - 1}) x K rows, got {prefix.shape[-2]}: "
                "make it with an alignment map built from the same config (deep_prompt)"
            )
        k = prefix.shape[-2] // layers
        offsets = prefix[:, k:].unflatten(1, (layers - 1, k)).transpose(0, 1)
        return prefix[:, :k], offsets

    @contextlib.contextmanager
    def _deep_offsets(self, offsets: Tensor | None, slots: Tensor) -> Iterator[None]:
        """While the backbone runs, add layer l's offsets to the hidden states at the prompt's slots before it.

        The hooks are the module's for good; what they add is this thread's (a context variable), so one caller's
        prompt never reaches another's forward."""
        if offsets is None:
            yield
            return
        token = _DEEP_OFFSETS.set((id(self), slots.nonzero(as_tuple=True), offsets))  # nonzero: scatter's order
        try:
            yield
        finally:
            _DEEP_OFFSETS.reset(token)

    def _install_deep_hooks(self) -> None:
        for index, layer in enumerate(self._deep_targets):
            layer.register_forward_pre_hook(functools.partial(self._add_offsets, index), with_kwargs=True)

    def _add_offsets(self, index: int, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        active = _DEEP_OFFSETS.get()
        if active is None or active[0] != id(self):
            return None
        _, where, offsets = active
        hidden = args[0] if args else kwargs["hidden_states"]
        added = hidden.index_put(where, offsets[index].reshape(-1, hidden.shape[-1]).to(hidden.dtype), accumulate=True)
        return ((added, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": added})

    def blend(self, texts: list[str], prompted: Tensor, gate: Tensor, max_length: int | None = None) -> Tensor:
        """``plain + gate * (prompted - plain)`` over unit vectors: the prompted embeddings of ``texts`` drawn towards
        their plain ones (no gradient: the backbone is frozen and the plain side has nothing to learn), renormalised
        as :meth:`forward` normalises. Both sides are unit length first, even under :func:`raw_pooling`, so the
        blend means the same whoever calls it. At ``gate == 0`` this *is* the frozen backbone, whatever the prompt,
        and its gradient still tells the gate which way helps (ReZero's trick, for a prompt)."""
        with torch.no_grad():
            plain = F.normalize(self(texts, max_length=max_length), dim=-1)
        prompted = F.normalize(prompted, dim=-1)
        mixed = plain + gate.to(prompted.dtype) * (prompted - plain)
        return F.normalize(mixed, dim=-1) if self.normalize and not _RAW_POOLING.get() else mixed

    def _layout(self, ids: list[list[int]], num_soft: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Padded token ids, attention mask, pooling mask and soft-prompt slots (B, width), built on the CPU and
        moved in one transfer each. Row i reads [BOS/CLS?][K soft tokens][the rest of its tokens], or with a
        suffix prompt [all its tokens][K soft tokens], pooling over the K."""
        suffix = bool(num_soft) and self.prompt_position is PromptPosition.SUFFIX
        width = max(len(row) for row in ids) + num_soft
        left = self.tokenizer.padding_side == "left"
        token_ids = torch.zeros((len(ids), width), dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        pool_mask = torch.zeros((len(ids), width), dtype=torch.float32)
        slots = torch.zeros((len(ids), width), dtype=torch.bool)
        for i, row in enumerate(ids):
            n = len(row) + num_soft
            start = width - n if left else 0
            mask[i, start : start + n] = 1
            if suffix:  # the soft positions alone have read the whole text: they are what is pooled
                soft = start + len(row)
                token_ids[i, start:soft] = torch.tensor(row, dtype=torch.long)
                slots[i, soft : start + n] = True
                pool_mask[i, soft : start + n] = 1.0
                continue
            head = self._leading_special(row)
            body = start + head + num_soft
            token_ids[i, start : start + head] = torch.tensor(row[:head], dtype=torch.long)
            token_ids[i, body : start + n] = torch.tensor(row[head:], dtype=torch.long)
            slots[i, start + head : body] = True
            pool_mask[i, body : start + n] = 1.0
            # A causal model's BOS state does not depend on the text; mean pooling leaves it out (a CLS stays).
            if head and row[0] != self.tokenizer.bos_token_id:
                pool_mask[i, start] = 1.0
        device = self.device
        return token_ids.to(device), mask.to(device), pool_mask.to(device), slots.to(device)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the backbone's layers in backward (memory for time, results unchanged).

        transformers checkpoints a layer only in training mode, and this module stays in eval mode; so only the
        decoder layers' own ``training`` flags are raised, while dropout and everything else stay in eval.
        """
        if self._deep_targets:  # a recomputed layer would run outside the forward that set its offsets
            raise ValueError("gradient checkpointing cannot recompute deep prompts' layers; turn one of them off")
        enable_checkpointing(self.model)
        self._checkpointing = True
        self._checkpoint_layers(True)

    def _checkpoint_layers(self, mode: bool) -> None:
        if not self._checkpointing:
            return
        from transformers.modeling_layers import GradientCheckpointingLayer

        for module in self.model.modules():
            if isinstance(module, GradientCheckpointingLayer):
                module.training = mode

    def _pool(self, hidden: Tensor, mask: Tensor, pool_mask: Tensor) -> Tensor:
        if self.pooling is not Pooling.MEAN:
            # The last real token, whichever side the padding is on.
            positions = torch.arange(mask.shape[1], device=mask.device)
            last = hidden[torch.arange(hidden.shape[0], device=hidden.device), (positions * mask).argmax(dim=1)]
            if self.pooling is Pooling.LAST:
                return last
        weights = pool_mask / pool_mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = torch.einsum("bld,bl->bd", hidden, weights)
        if self.pooling is Pooling.MEAN:
            return mean
        # Each half unit length even for raw pooling: their balance is the read-out itself, not a scale to undo.
        return torch.cat([F.normalize(mean, dim=-1), F.normalize(last, dim=-1)], dim=-1) / math.sqrt(2.0)
