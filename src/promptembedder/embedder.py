"""PromptEmbedder: a Prompting LLM writes a soft prompt, W aligns it, a frozen Embedding LLM embeds.

    instruction --PromptingLLM--> s (K, d_p) --AlignmentMap--> W s (K, d_e)
    [W s ; text tokens] --EmbeddingLLM (frozen)--> pooled, normalised embedding (d_e)

Only the Prompting LLM and W are trainable; the Embedding LLM never changes.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from promptembedder.alignment import AlignmentMap
from promptembedder.atomic import replace_folder
from promptembedder.config import (
    AlignmentInit,
    Conditioning,
    DocumentPrompt,
    PromptEmbedderConfig,
    SimilarityFunction,
)
from promptembedder.embedding import EmbeddingLLM, raw_pooling
from promptembedder.prompting import PromptingLLM

CONFIG_NAME = "promptembedder_config.json"
PROMPTING_DIR = "prompting_llm"
ALIGNMENT_NAME = "alignment.safetensors"
FORMAT_VERSION = 1
ST_MODULE = "promptembedder.integrations.sentence_transformers.PromptEmbedderModule"
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")  # sentence-transformers' quantize_embeddings

FINGERPRINT_SAMPLE = 4096
"""Values per tensor that ``fingerprint()`` hashes (plus each tensor's sum and norm, reduced where it lives)."""
PROBES = 16
"""Values per tensor the prompt cache re-reads on every use, to see writes that bypass version counters."""

# Held by encode calls that must borrow eval mode from a model in training mode (see PromptEmbedder.encode).
_MODE_LOCK = threading.RLock()
# Guards the swap of a prompt cache for a new one (microseconds). Module-level: a model stays deep-copyable.
_CACHE_LOCK = threading.Lock()
# Within one encode call (this thread only): the prompts already checked against the weights' state, so the
# check (~10 ms for a 135M Prompting LLM on a CPU) runs once per call, not once per batch.
_PINNED_PROMPTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("promptembedder_pinned", default=None)


class NotAPromptEmbedderError(ValueError):
    """A folder that ``PromptEmbedder.from_pretrained`` cannot read."""


class EmbeddingModelMismatchError(ValueError):
    """The Embedding LLM at hand is not the one the saved PromptEmbedder was trained against."""


class EmbeddingModelNotFoundError(FileNotFoundError):
    """The Embedding LLM a saved PromptEmbedder names is not here (not prepared, moved, or never installed)."""


def weights_fingerprint(module: nn.Module, *, sample: int | None = 4096) -> str:
    """A short hash of a module's parameter names, shapes and values (values read in fp32).

    With ``sample`` only about that many evenly strided values per tensor are hashed: enough to tell two
    checkpoints apart, and fast for a multi-billion-parameter backbone. bf16 -> fp32 is exact, so a model
    gives the same fingerprint whether loaded in bf16 or fp32.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        if sample is not None and flat.numel() > sample:
            flat = flat[:: flat.numel() // sample]
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(flat.float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _trainable_digest(module: nn.Module, digest, sample: int) -> None:
    """Feed ``digest`` each tensor's name, shape, dtype, ~``sample`` strided values and its sum and norm.

    Nothing the size of the model is copied: the strided values are a few thousand per tensor and the sum and
    norm are reduced on the tensor's own device, so any ordinary update of a tensor changes them. The same
    weights must hash alike in every process: a reduction of a whole tensor splits its work by thread count,
    so its last bits differ between a 1-thread and a 2-thread process (two evals then missed each other's
    cache). So the sum and norm are taken over fixed-size rows, one row per output (reduced alone, in a fixed
    order), the rows' results added exactly on the host, and rounded to 12 significant digits.
    """
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if flat.numel() == 0:
            continue
        picked = flat[:: max(1, flat.numel() // sample)][:sample]
        digest.update(picked.float().cpu().numpy().tobytes())
        digest.update(repr(_exact_stats(flat)).encode())


_STAT_ROW = 1024


def _exact_stats(flat: Tensor) -> tuple[str, str]:
    """The sum and the squared norm of a 1-D tensor, the same whatever the thread count (see above)."""
    rows = flat.numel() // _STAT_ROW
    parts = [flat[: rows * _STAT_ROW].view(rows, _STAT_ROW), flat[rows * _STAT_ROW :].view(1, -1)]
    sums, squares = [], []
    for part in parts:
        if part.numel():
            # fp64 accumulation within a row of 1,024 values: cheap, and exact enough to round afterwards.
            sums += part.sum(dim=1, dtype=torch.float64).tolist()
            squares += torch.linalg.vector_norm(part, dim=1, dtype=torch.float64).square().tolist()
    return f"{math.fsum(sums):.12g}", f"{math.fsum(squares):.12g}"


def _weights_state(params: list[Tensor], settings: tuple) -> tuple[tuple, list[Tensor]]:
    """What the cached prompts and the fingerprint depend on, cheaply: settings, and per weight its identity,
    version counter (optimiser steps, load_state_dict), storage, dtype and device (``.to``, ``.data = ...``)
    and a few probed values (in-place writes through ``.data`` bump no counter; they change the probes)."""
    meta = [settings]
    by_device: dict[torch.device, list[Tensor]] = {}
    for p in params:
        meta.append((id(p), p._version, p.data_ptr(), p.dtype, p.device, tuple(p.shape)))
        flat = p.detach().reshape(-1)
        by_device.setdefault(p.device, []).append(flat[:: max(1, flat.numel() // PROBES)][:PROBES].float())
    # One copy per device (views would follow the very writes they are meant to catch).
    return tuple(meta), [torch.cat(probes) for probes in by_device.values()]


def _same_state(a: tuple[tuple, list[Tensor]] | None, b: tuple[tuple, list[Tensor]]) -> bool:
    return a is not None and a[0] == b[0] and all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))


def _resolve_instruction(config: PromptEmbedderConfig, instruction, prompt, prompt_name) -> str | None:
    """One instruction from our name (``instruction``) or sentence-transformers' (``prompt``, ``prompt_name``)."""
    given = [v for v in (instruction, prompt) if v is not None]
    if len(given) == 2 and instruction != prompt:
        raise ValueError("instruction and prompt are the same option under two names: pass one of them")
    if given:
        return _check_instruction(given[0])
    if prompt_name is not None:
        return config.instruction_for(prompt_name)
    return None


def _check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is a {type(text).__name__}, not a string: pass str items only")
    return list(texts)


def _check_instruction(instruction: str | None) -> str | None:
    if instruction is None:
        return None
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
    if not instruction.strip():
        raise ValueError("instruction is empty: pass a task description, or None to embed without a soft prompt")
    return instruction


def _token_lengths(embedding: EmbeddingLLM, texts: list[str]) -> list[int]:
    """Token counts (capped at the Embedding LLM's limit) to sort by: a fast tokenizer does a batch in ms."""
    cap = embedding.max_length + 1
    return [len(ids) for ids in embedding.tokenizer(texts, truncation=True, max_length=cap)["input_ids"]]


def _encode_sorted(
    self: nn.Module,
    texts: list[str],
    instruction: str | None,
    batch_size: int,
    show_progress_bar: bool | None,
    documents: bool,
    use_cache: bool,
    truncate_dim: int | None,
    normalize: bool,
) -> Tensor:
    """(n, d) float32 on the model's device, in the texts' order (a function: baselines share it)."""
    lengths = _token_lengths(self.embedding, texts)
    # Longest first: similar lengths share a batch (padding only to the batch's own longest) and a memory
    # error shows on the first batch, not the last.
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    show = len(texts) > 8 * batch_size if show_progress_bar is None else show_progress_bar
    chunks = []
    pinned = _PINNED_PROMPTS.set({})  # this call's prompts: the weights' state is checked on its first batch
    try:
        with torch.inference_mode(), raw_pooling():
            for start in tqdm(range(0, len(texts), batch_size), desc="Encoding", unit="batch", disable=not show):
                batch = [texts[i] for i in order[start : start + batch_size]]
                if documents:
                    vectors = self.embed_documents(batch, instruction)
                else:
                    vectors = self(batch, instruction, use_cache=use_cache)
                vectors = vectors.float()
                if truncate_dim is not None:
                    vectors = vectors[:, :truncate_dim]
                if normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                chunks.append(vectors)
            stacked = torch.cat(chunks)
            out = torch.empty_like(stacked)
            out[torch.tensor(order, device=stacked.device)] = stacked
    finally:
        _PINNED_PROMPTS.reset(pinned)
    return out


class PromptEmbedder(nn.Module):
    """Instruction-aware text embedder.

    Example::

        model = PromptEmbedder.from_models(prompting_model="smollm2-135m", embedding_model="gemma3-270m")
        vectors = model.encode(["A cat sat on the mat."], instruction="Retrieve semantically similar text")
    """

    def __init__(
        self,
        config: PromptEmbedderConfig,
        prompting: PromptingLLM,
        alignment: AlignmentMap,
        embedding: EmbeddingLLM,
    ) -> None:
        super().__init__()
        if alignment.in_features != prompting.hidden_size or alignment.out_features != embedding.hidden_size:
            raise ValueError(
                f"alignment map is {alignment.in_features}->{alignment.out_features} but the Prompting LLM is "
                f"{prompting.hidden_size} wide and the Embedding LLM {embedding.hidden_size}"
            )
        if alignment.deep_layers != embedding.deep_layers:
            raise ValueError(
                f"alignment map carries deep prompts for {alignment.deep_layers} layers but the Embedding LLM reads "
                f"them at {embedding.deep_layers}: build both from one config (deep_prompt)"
            )
        self.config = config
        self.prompting = prompting
        self.alignment = alignment
        self.embedding = embedding
        # Aligned soft prompts by instruction, valid while the weights' state is ``_cache_state``. A change of
        # state swaps in a fresh dict (never clears the one a concurrent reader holds).
        self._prompt_cache: dict[str, Tensor] = {}
        self._cache_state: tuple[tuple, list[Tensor]] | None = None
        self._embedding_fingerprint: str | None = None
        self._fingerprint: tuple[tuple[tuple, list[Tensor]], str] | None = None
        self._eval_borrowed = False

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_models(
        cls,
        prompting_model: str = "smollm2-135m",
        embedding_model: str = "gemma3-270m",
        num_soft_tokens: int = 5,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = 0,
        **config_kwargs,
    ) -> PromptEmbedder:
        """Build an (untrained) PromptEmbedder from two pretrained models; other options as in the config."""
        config = PromptEmbedderConfig(
            prompting_model=prompting_model,
            embedding_model=embedding_model,
            num_soft_tokens=num_soft_tokens,
            **config_kwargs,
        )
        return cls.from_config(config, device=device, dtype=dtype, seed=seed)

    @classmethod
    def from_config(
        cls,
        config: PromptEmbedderConfig,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = 0,
    ) -> PromptEmbedder:
        """Build an untrained PromptEmbedder exactly as a config describes it."""
        from promptembedder.models import load_base_model, load_causal_lm

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        lm, lm_tokenizer = load_causal_lm(config.prompting_model, device=device, dtype=dtype)
        backbone, backbone_tokenizer = load_base_model(config.embedding_model, device=device, dtype=dtype)
        return cls.from_modules(config, lm, lm_tokenizer, backbone, backbone_tokenizer, seed=seed)

    @classmethod
    def from_modules(
        cls,
        config: PromptEmbedderConfig,
        prompting_lm,
        prompting_tokenizer,
        embedding_model,
        embedding_tokenizer,
        *,
        seed: int | None = 0,
    ) -> PromptEmbedder:
        """Build from already-loaded transformers models (a causal LM, and any model taking inputs_embeds)."""
        prompting = PromptingLLM(
            prompting_lm,
            prompting_tokenizer,
            num_soft_tokens=config.num_soft_tokens,
            relaxation=config.relaxation,
            temperature=config.temperature,
            max_length=config.instruction_max_length,
        )
        embedding = EmbeddingLLM.from_config(embedding_model, embedding_tokenizer, config)
        if seed is not None:
            torch.manual_seed(seed)
        alignment = AlignmentMap(
            prompting.hidden_size,
            embedding.hidden_size,
            bias=config.alignment_bias,
            gate=config.prompt_gate,
            deep_layers=embedding.deep_layers,
        )
        alignment.to(device=prompting.device, dtype=torch.float32)
        vocab = config.alignment_init is AlignmentInit.VOCAB
        if vocab or config.mixture_table:  # the table is a function of the two vocabularies: rebuilt on every load
            alignment.fit_vocabularies(
                prompting_lm,
                prompting_tokenizer,
                embedding_model,
                embedding_tokenizer,
                weights=vocab,
                table=config.mixture_table,
            )
        return cls(config, prompting, alignment, embedding).eval()  # like from_pretrained: ready to encode

    # ---------------------------------------------------------------- the forward pass
    def train(self, mode: bool = True) -> PromptEmbedder:
        if mode:
            self._prompt_cache = {}  # training is about to change the weights that made them
        return super().train(mode)

    def _settings(self) -> tuple:
        """The live generation settings (set on the modules, which need not match the config any more)."""
        p = self.prompting  # a stand-in (transfer's StoredPrompts) has only some of them
        relaxation = getattr(p, "relaxation", None)
        return (
            getattr(p, "num_soft_tokens", None),
            getattr(relaxation, "value", relaxation),
            getattr(p, "temperature", None),
            getattr(p, "max_length", None),
            self.config.conditioning,
        )

    def _state(self) -> tuple[tuple, list[Tensor]]:
        tensors = [*self.prompting.parameters(), *self.alignment.parameters(), *self.alignment.buffers()]
        return _weights_state(tensors, self._settings())

    def soft_prompts(self, texts: list[str]) -> Tensor:
        """The Prompting LLM's soft prompts (B, K, d_p) before alignment: the same for every backbone."""
        return self.prompting(texts)

    def aligned_prompts(self, texts: list[str], *, return_entropy: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The soft prompts (B, K, d_e) after W, for texts as the Prompting LLM reads them (with
        ``return_entropy`` also each step's entropy, with its graph). A W with a mixture table also reads the
        steps' mixture weights."""
        if self.alignment.has_table:
            soft, entropy, weights = self.prompting(texts, return_weights=True)
            aligned = self.alignment(soft, weights)
        elif return_entropy:
            soft, entropy = self.prompting(texts, return_entropy=True)
            aligned = self.alignment(soft)
        else:
            return self.alignment(self.prompting(texts))
        return (aligned, entropy) if return_entropy else aligned

    def _prompting_inputs(self, texts: list[str], instruction: str) -> list[str]:
        if self.config.conditioning is Conditioning.INSTRUCTION_TEXT:
            return [f"{instruction}\n{text}" for text in texts]
        return [instruction]

    def prompt_for(self, texts: list[str], instruction: str, *, use_cache: bool = True) -> Tensor:
        """Aligned soft prompt: (K, d_e) for instruction conditioning, else (B, K, d_e)."""
        if self.config.conditioning is Conditioning.INSTRUCTION:
            if use_cache and not self.training and not torch.is_grad_enabled():
                return self._cached_prompt(instruction)
            return self.aligned_prompts([instruction])[0]
        return self.aligned_prompts(self._prompting_inputs(texts, instruction))

    def _cached_prompt(self, instruction: str) -> Tensor:
        pinned = _PINNED_PROMPTS.get()
        key = (id(self), instruction)
        if pinned is not None and key in pinned:
            return pinned[key]  # checked on this encode call's first batch: the state check costs ms per call
        aligned = self._checked_prompt(instruction)
        if pinned is not None:
            pinned[key] = aligned
        return aligned

    def _checked_prompt(self, instruction: str) -> Tensor:
        state = self._state()
        with _CACHE_LOCK:
            if not _same_state(self._cache_state, state):
                self._prompt_cache, self._cache_state = {}, state
            cache = self._prompt_cache
        hit = cache.get(instruction)
        if hit is not None:
            return hit
        aligned = self.aligned_prompts([instruction])[0]
        cache[instruction] = aligned  # into the dict of the state it was made in, current or already replaced
        return aligned

    def forward(
        self,
        texts: list[str],
        instruction: str | None = None,
        *,
        use_cache: bool = True,
        max_length: int | None = None,
        prompt: Tensor | None = None,
    ) -> Tensor:
        """Embeddings (B, d_e) with gradients to the Prompting LLM and W; no soft prompt if no instruction.

        ``prompt`` is an aligned soft prompt already made for ``instruction`` (the trainer makes one per step
        and reuses it for every chunk and document); without it the prompt is made (or read from the cache).
        """
        if instruction is None:
            prefix = None
        elif prompt is not None:
            prefix = prompt
        else:
            prefix = self.prompt_for(texts, instruction, use_cache=use_cache)
        out = self.embedding(texts, prefix=prefix, max_length=max_length)
        if prefix is None or self.alignment.gate is None:
            return out
        return self.embedding.blend(texts, out, self.alignment.gate, max_length=max_length)

    @property
    def prompts_documents(self) -> bool:
        return self.config.document_prompt is DocumentPrompt.PROMPTED

    def embed_documents(
        self,
        texts: list[str],
        instruction: str | None = None,
        max_length: int | None = None,
        prompt: Tensor | None = None,
    ) -> Tensor:
        """Documents as the config says: with the task's soft prompt (``prompt`` if given), or plain."""
        if not self.prompts_documents:
            return self(texts, None, max_length=max_length)
        return self(texts, instruction, max_length=max_length, prompt=prompt)

    # ---------------------------------------------------------------- inference
    @property
    def device(self) -> torch.device:
        return self.embedding.device

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding.output_dim

    get_embedding_dimension = get_sentence_embedding_dimension  # sentence-transformers' newer name

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool | None = None,
        show_progress_bar: bool | None = None,
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        precision: str = "float32",
        truncate_dim: int | None = None,
        documents: bool = False,
        use_cache: bool = True,
    ) -> np.ndarray | Tensor | list[Tensor]:
        """Embed texts as a (n, d) array (a single string gives (d,)), called as sentence-transformers is.

        ``instruction`` (or ``prompt``, its sentence-transformers name, or ``prompt_name``, a task saved in
        ``config.prompts``) steers the soft prompt; none embeds without one. With ``documents=True`` the texts
        are embedded as the document side (see ``config.document_prompt``). ``normalize`` (or
        ``normalize_embeddings``) defaults to ``config.normalize``; ``truncate_dim`` keeps the first dimensions
        (Matryoshka-style), normalising after the cut. ``precision`` quantises through sentence-transformers'
        ``quantize_embeddings`` (int8/uint8 ranges from these embeddings). ``device`` moves the model there
        first, as sentence-transformers does. Texts go longest first in batches padded to their own longest.
        Safe to call from several threads at once.
        """
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts)
        instruction = _resolve_instruction(self.config, instruction, prompt, prompt_name)
        if normalize is not None and normalize_embeddings is not None and normalize != normalize_embeddings:
            raise ValueError("normalize and normalize_embeddings are the same option under two names: pass one")
        norm = next((v for v in (normalize, normalize_embeddings) if v is not None), self.config.normalize)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not supported; choose one of: {', '.join(PRECISIONS)}")
        dim = self.get_sentence_embedding_dimension()
        if truncate_dim is not None and not (isinstance(truncate_dim, int) and 1 <= truncate_dim <= dim):
            raise ValueError(
                f"truncate_dim must be an integer from 1 to {dim} (the embedding width), got {truncate_dim!r}"
            )
        if device is not None and torch.device(device) != self.device:
            with _MODE_LOCK:
                self.to(device)
        out_dim = truncate_dim or dim

        def run() -> Tensor:
            return _encode_sorted(
                self, texts, instruction, batch_size, show_progress_bar, documents, use_cache, truncate_dim, norm
            )

        if not texts:
            vectors = torch.zeros((0, out_dim), device=self.device)
        else:
            with _MODE_LOCK:
                borrow = self.training or getattr(self, "_eval_borrowed", False)
            if borrow:
                # The model is training (or another thread borrowed eval mode from training): flipping a shared
                # module's mode races with every other caller, so such calls take turns.
                with _MODE_LOCK:
                    was_training = self.training
                    self._eval_borrowed = True
                    self.eval()
                    try:
                        vectors = run()
                    finally:
                        self.train(was_training)
                        self._eval_borrowed = False
            else:
                vectors = run()  # eval mode: nothing shared is changed, so calls run side by side
        if precision != "float32":
            from sentence_transformers.util.quantization import quantize_embeddings

            quantized = quantize_embeddings(vectors.cpu().numpy(), precision=precision) if len(texts) else None
            result = quantized if quantized is not None else np.zeros((0, out_dim), dtype=np.float32)
            if convert_to_tensor:
                result = torch.from_numpy(result)
        elif convert_to_tensor:
            result = vectors
        elif convert_to_numpy:
            result = vectors.cpu().numpy()
        else:
            result = list(vectors)
        return result[0] if single else result

    def encode_queries(
        self, texts: Sequence[str], instruction: str | None, batch_size: int = 32, **kwargs
    ) -> np.ndarray:
        return self.encode(texts, instruction=instruction, batch_size=batch_size, **kwargs)

    def encode_documents(
        self, texts: Sequence[str], instruction: str | None = None, batch_size: int = 32, **kwargs
    ) -> np.ndarray:
        return self.encode(texts, instruction=instruction, batch_size=batch_size, documents=True, **kwargs)

    def encode_query(
        self, texts: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None, **kwargs
    ) -> np.ndarray | Tensor | list[Tensor]:
        """sentence-transformers' ``encode_query``: the ``"query"`` task's instruction unless one is given."""
        if (
            prompt_name is None
            and prompt is None
            and kwargs.get("instruction") is None
            and "query" in self.config.prompts
        ):
            prompt_name = "query"
        return self.encode(texts, prompt=prompt, prompt_name=prompt_name, **kwargs)

    def encode_document(
        self, texts: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None, **kwargs
    ) -> np.ndarray | Tensor | list[Tensor]:
        """sentence-transformers' ``encode_document``: the document side (``config.document_prompt``), with
        the ``"document"``, ``"passage"`` or ``"corpus"`` task's instruction unless one is given."""
        if prompt_name is None and prompt is None and kwargs.get("instruction") is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.config.prompts), None)
        return self.encode(texts, prompt=prompt, prompt_name=prompt_name, documents=True, **kwargs)

    @property
    def similarity_fn_name(self) -> str:
        return self.config.similarity_fn_name.value

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        try:
            self.config.similarity_fn_name = SimilarityFunction(value)
        except ValueError:
            choices = ", ".join(f.value for f in SimilarityFunction)
            raise ValueError(f"similarity_fn_name={value!r} is not valid; choose one of: {choices}") from None

    def similarity(self, a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> Tensor:
        """(len(a), len(b)) scores under ``similarity_fn_name``, as sentence-transformers computes them."""
        from sentence_transformers import SimilarityFunction as STSimilarity

        return STSimilarity.to_similarity_fn(self.similarity_fn_name)(a, b)

    # ---------------------------------------------------------------- identity
    def embedding_fingerprint(self) -> str:
        if self._embedding_fingerprint is None:  # the Embedding LLM is frozen: one hash lasts
            self._embedding_fingerprint = weights_fingerprint(self.embedding.model)
        return self._embedding_fingerprint

    def fingerprint(self) -> str:
        """Changes whenever an embedding-relevant setting or any trainable weight changes (see ``_weights_state``)."""
        state = self._state()
        cached = self._fingerprint
        if cached is not None and _same_state(cached[0], state):
            return cached[1]
        digest = hashlib.sha256(self.config.identity_json().encode())
        digest.update(self.embedding_fingerprint().encode())
        e = self.embedding
        digest.update(repr((self._settings(), e.pooling.value, e.normalize, e.max_length)).encode())
        _trainable_digest(self.prompting.model, digest, FINGERPRINT_SAMPLE)
        _trainable_digest(self.alignment, digest, FINGERPRINT_SAMPLE)
        self._fingerprint = (state, digest.hexdigest()[:16])
        return self._fingerprint[1]

    # ---------------------------------------------------------------- persistence
    def save_pretrained(self, path: str | os.PathLike, *, model_card: bool = True) -> Path:
        """Write config, the Prompting LLM and W; record the Embedding LLM by name and fingerprint.

        The folder also loads in sentence-transformers (``SentenceTransformer(path, trust_remote_code=True)``)
        and, with ``model_card``, carries a README.md with the Hugging Face metadata (see
        :mod:`promptembedder.modelcard`). It is built aside and swapped in whole, so an interruption never
        leaves half a model.
        """
        target = Path(path).resolve()
        if target.exists() and any(target.iterdir()) and not (target / CONFIG_NAME).is_file():
            raise FileExistsError(f"{target} exists and is not a saved PromptEmbedder; choose an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        card, table = self._model_card(target) if model_card else (None, None)  # read before the old folder goes
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.saving-"))
        try:
            self.write_files(staging)
            if card is not None:
                from promptembedder.modelcard import CARD_NAME

                (staging / CARD_NAME).write_text(card, encoding="utf-8")
            if table is not None and table.parent == target:
                shutil.copy2(table, staging / table.name)  # the report the card quotes stays beside it
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def write_files(self, folder: Path) -> None:
        """The files of a save, into an existing folder (sentence-transformers' save calls this too)."""
        folder = Path(folder)
        self.prompting.model.save_pretrained(folder / PROMPTING_DIR, safe_serialization=True)
        self.prompting.tokenizer.save_pretrained(folder / PROMPTING_DIR)
        alignment = {k: v.detach().contiguous().cpu() for k, v in self.alignment.state_dict().items()}
        save_file(alignment, str(folder / ALIGNMENT_NAME))
        meta = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "embedding_model": {
                "name": self.config.embedding_model,
                "fingerprint": self.embedding_fingerprint(),
                "hidden_size": self.embedding.hidden_size,
            },
            "prompting_hidden_size": self.prompting.hidden_size,
            "alignment_anchors": self.alignment.num_anchors,
        }
        (folder / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
        # sentence-transformers reads these two: the module to build, and the task names (prompts).
        modules = [{"idx": 0, "name": "0", "path": "", "type": ST_MODULE}]
        (folder / "modules.json").write_text(json.dumps(modules, indent=2))
        st_config = {
            "model_type": "SentenceTransformer",
            "prompts": dict(self.config.prompts),
            "default_prompt_name": None,
            "similarity_fn_name": self.similarity_fn_name,
        }
        (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2, sort_keys=True))

    def _model_card(self, target: Path) -> tuple[str, Path | None]:
        from promptembedder.modelcard import find_eval_table, find_training_config, model_card

        table = find_eval_table(target)
        card = model_card(
            self.config,
            embedding_dim=self.get_sentence_embedding_dimension(),
            eval_table=table.read_text(encoding="utf-8") if table is not None else None,
            training=find_training_config(target),
        )
        return card, table

    @staticmethod
    def read_metadata(path: str | os.PathLike) -> dict:
        folder = Path(path)
        config_file = folder / CONFIG_NAME
        if not folder.is_dir() or not config_file.is_file():
            raise NotAPromptEmbedderError(
                f"{folder} is not a saved PromptEmbedder (no {CONFIG_NAME}); "
                "make one with PromptEmbedder.save_pretrained(folder)"
            )
        try:
            meta = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise NotAPromptEmbedderError(f"{config_file} is not valid JSON ({err}); the save was damaged") from None
        missing = [p for p in (PROMPTING_DIR, ALIGNMENT_NAME) if not (folder / p).exists()]
        if missing:
            raise NotAPromptEmbedderError(f"{folder} lacks {', '.join(missing)}: the save is incomplete")
        return meta

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        embedding_model: str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> PromptEmbedder:
        """Restore a saved PromptEmbedder; ``embedding_model`` points at the backbone if it moved."""
        from promptembedder import models

        folder = Path(path)
        meta = cls.read_metadata(folder)
        config = PromptEmbedderConfig.from_dict(meta["config"])
        recorded = meta["embedding_model"]
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        lm, lm_tokenizer = models.load_causal_lm(str(folder / PROMPTING_DIR), device=device, dtype=dtype)
        backbone_name = embedding_model or recorded["name"]
        try:
            backbone, backbone_tokenizer = models.load_base_model(backbone_name, device=device, dtype=dtype)
        except (models.UnknownModelError, models.ModelNotInstalledError, OSError) as err:
            # Only "not here" is ours to explain; anything else (out of memory, a broken install) is raised as is.
            raise EmbeddingModelNotFoundError(
                f"The Embedding LLM {backbone_name!r} recorded in {folder} could not be loaded ({err}). "
                "Prepare it (promptembedder models prepare NAME) or pass embedding_model=PATH."
            ) from err
        config.alignment_init = AlignmentInit.RANDOM  # W comes from the file, not from a fit
        model = cls.from_modules(config, lm, lm_tokenizer, backbone, backbone_tokenizer, seed=None)
        found = model.embedding_fingerprint()
        if found != recorded["fingerprint"]:
            raise EmbeddingModelMismatchError(
                f"The Embedding LLM {backbone_name!r} (fingerprint {found}) differs from the one this model was "
                f"trained against ({recorded['name']!r}, fingerprint {recorded['fingerprint']}): its soft prompts "
                "would be meaningless there. Load the recorded backbone, or train a new alignment map for this one "
                "(promptembedder transfer)."
            )
        model.alignment.load_state_dict(load_file(str(folder / ALIGNMENT_NAME), device=str(model.device)))
        model.alignment.num_anchors = meta.get("alignment_anchors")
        model.config.alignment_init = AlignmentInit(meta["config"]["alignment_init"])
        return model.eval()
