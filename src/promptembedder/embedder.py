"""PromptEmbedder: a Prompting LLM writes a soft prompt, W aligns it, a frozen Embedding LLM embeds.

    instruction --PromptingLLM--> s (K, d_p) --AlignmentMap--> W s (K, d_e)
    [W s ; text tokens] --EmbeddingLLM (frozen)--> pooled, normalised embedding (d_e)

Only the Prompting LLM and W are trainable; the Embedding LLM never changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from promptembedder.alignment import AlignmentMap
from promptembedder.config import AlignmentInit, Conditioning, DocumentPrompt, PromptEmbedderConfig
from promptembedder.embedding import EmbeddingLLM
from promptembedder.prompting import PromptingLLM

CONFIG_NAME = "promptembedder_config.json"
PROMPTING_DIR = "prompting_llm"
ALIGNMENT_NAME = "alignment.safetensors"
FORMAT_VERSION = 1


class NotAPromptEmbedderError(ValueError):
    """A folder that ``PromptEmbedder.from_pretrained`` cannot read."""


class EmbeddingModelMismatchError(ValueError):
    """The Embedding LLM at hand is not the one the saved PromptEmbedder was trained against."""


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
        self.config = config
        self.prompting = prompting
        self.alignment = alignment
        self.embedding = embedding
        self._prompt_cache: dict[str, Tensor] = {}
        self._prompt_cache_version: tuple | None = None  # the weights' versions the cached prompts were made with
        self._embedding_fingerprint: str | None = None
        self._fingerprint: tuple[tuple, str] | None = None

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
        embedding = EmbeddingLLM(
            embedding_model,
            embedding_tokenizer,
            pooling=config.pooling,
            normalize=config.normalize,
            max_length=config.max_length,
            name=config.embedding_model,
        )
        if seed is not None:
            torch.manual_seed(seed)
        alignment = AlignmentMap(prompting.hidden_size, embedding.hidden_size, bias=config.alignment_bias)
        alignment.to(device=prompting.device, dtype=torch.float32)
        if config.alignment_init is AlignmentInit.VOCAB:
            alignment.init_from_vocabularies(prompting_lm, prompting_tokenizer, embedding_model, embedding_tokenizer)
        return cls(config, prompting, alignment, embedding).eval()  # like from_pretrained: ready to encode

    # ---------------------------------------------------------------- the forward pass
    def train(self, mode: bool = True) -> PromptEmbedder:
        if mode:
            self._prompt_cache.clear()  # training is about to change the weights that made them
        return super().train(mode)

    def _weights_version(self) -> tuple:
        # In-place updates (optimiser steps, load_state_dict) bump a tensor's version counter.
        return tuple((id(p), p._version) for p in [*self.prompting.parameters(), *self.alignment.parameters()])

    def soft_prompts(self, texts: list[str]) -> Tensor:
        """The Prompting LLM's soft prompts (B, K, d_p) before alignment: the same for every backbone."""
        return self.prompting(texts)

    def _prompting_inputs(self, texts: list[str], instruction: str) -> list[str]:
        if self.config.conditioning is Conditioning.INSTRUCTION_TEXT:
            return [f"{instruction}\n{text}" for text in texts]
        return [instruction]

    def prompt_for(self, texts: list[str], instruction: str, *, use_cache: bool = True) -> Tensor:
        """Aligned soft prompt: (K, d_e) for instruction conditioning, else (B, K, d_e)."""
        if self.config.conditioning is Conditioning.INSTRUCTION:
            cacheable = use_cache and not self.training and not torch.is_grad_enabled()
            if cacheable and self._prompt_cache_version != self._weights_version():
                self._prompt_cache.clear()
                self._prompt_cache_version = self._weights_version()
            if cacheable and instruction in self._prompt_cache:
                soft = self._prompt_cache[instruction]
            else:
                soft = self.soft_prompts([instruction])[0]
                if cacheable:
                    self._prompt_cache[instruction] = soft
            return self.alignment(soft)
        return self.alignment(self.soft_prompts(self._prompting_inputs(texts, instruction)))

    def forward(
        self, texts: list[str], instruction: str | None = None, *, use_cache: bool = True, max_length: int | None = None
    ) -> Tensor:
        """Embeddings (B, d_e) with gradients to the Prompting LLM and W; no soft prompt if no instruction."""
        prefix = None if instruction is None else self.prompt_for(texts, instruction, use_cache=use_cache)
        return self.embedding(texts, prefix=prefix, max_length=max_length)

    @property
    def prompts_documents(self) -> bool:
        return self.config.document_prompt is DocumentPrompt.PROMPTED

    def embed_documents(
        self, texts: list[str], instruction: str | None = None, max_length: int | None = None
    ) -> Tensor:
        """Documents as the config says: with the task's soft prompt, or plain."""
        return self(texts, instruction if self.prompts_documents else None, max_length=max_length)

    # ---------------------------------------------------------------- inference
    @property
    def device(self) -> torch.device:
        return self.embedding.device

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding.hidden_size

    @torch.no_grad()
    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress_bar: bool | None = None,
        *,
        documents: bool = False,
        use_cache: bool = True,
    ) -> np.ndarray:
        """Embed texts as a (n, d) float32 array (a single string gives (d,)).

        ``instruction`` steers the soft prompt; ``None`` embeds without one. With ``documents=True`` the
        texts are embedded as the document side (see ``config.document_prompt``).
        """
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts)
        instruction = _check_instruction(instruction)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.get_sentence_embedding_dimension()), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            # Longest first so padding is small within a batch and a memory error shows on the first batch.
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            out = np.zeros((len(texts), self.get_sentence_embedding_dimension()), dtype=np.float32)
            show = len(texts) > 8 * batch_size if show_progress_bar is None else show_progress_bar
            starts = range(0, len(texts), batch_size)
            for start in tqdm(starts, desc="Encoding", unit="batch", disable=not show):
                idx = order[start : start + batch_size]
                batch = [texts[i] for i in idx]
                if documents:
                    vectors = self.embed_documents(batch, instruction)
                else:
                    vectors = self(batch, instruction, use_cache=use_cache)
                if normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out[0] if single else out

    def encode_queries(
        self, texts: Sequence[str], instruction: str | None, batch_size: int = 32, **kwargs
    ) -> np.ndarray:
        return self.encode(texts, instruction=instruction, batch_size=batch_size, **kwargs)

    def encode_documents(
        self, texts: Sequence[str], instruction: str | None = None, batch_size: int = 32, **kwargs
    ) -> np.ndarray:
        return self.encode(texts, instruction=instruction, batch_size=batch_size, documents=True, **kwargs)

    # ---------------------------------------------------------------- identity
    def embedding_fingerprint(self) -> str:
        if self._embedding_fingerprint is None:  # the Embedding LLM is frozen: one hash lasts
            self._embedding_fingerprint = weights_fingerprint(self.embedding.model)
        return self._embedding_fingerprint

    def fingerprint(self) -> str:
        """Changes whenever the config or any trainable weight changes (tracked by tensor versions)."""
        key = self._weights_version()
        if self._fingerprint is None or self._fingerprint[0] != key:
            digest = hashlib.sha256(self.config.to_json().encode())
            digest.update(self.embedding_fingerprint().encode())
            digest.update(weights_fingerprint(self.prompting.model, sample=None).encode())
            digest.update(weights_fingerprint(self.alignment, sample=None).encode())
            self._fingerprint = (key, digest.hexdigest()[:16])
        return self._fingerprint[1]

    # ---------------------------------------------------------------- persistence
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write config, the Prompting LLM and W; record the Embedding LLM by name and fingerprint.

        The folder is built aside and swapped in whole, so an interruption never leaves half a model.
        """
        target = Path(path).resolve()
        if target.exists() and any(target.iterdir()) and not (target / CONFIG_NAME).is_file():
            raise FileExistsError(f"{target} exists and is not a saved PromptEmbedder; choose an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.saving-"))
        try:
            self.prompting.model.save_pretrained(staging / PROMPTING_DIR, safe_serialization=True)
            self.prompting.tokenizer.save_pretrained(staging / PROMPTING_DIR)
            alignment = {k: v.detach().contiguous().cpu() for k, v in self.alignment.state_dict().items()}
            save_file(alignment, str(staging / ALIGNMENT_NAME))
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
            (staging / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
            os.replace(staging, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

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
        from promptembedder.models import load_base_model, load_causal_lm

        folder = Path(path)
        meta = cls.read_metadata(folder)
        config = PromptEmbedderConfig.from_dict(meta["config"])
        recorded = meta["embedding_model"]
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        lm, lm_tokenizer = load_causal_lm(str(folder / PROMPTING_DIR), device=device, dtype=dtype)
        backbone_name = embedding_model or recorded["name"]
        try:
            backbone, backbone_tokenizer = load_base_model(backbone_name, device=device, dtype=dtype)
        except Exception as err:  # noqa: BLE001 - any loading failure gets the same actionable message
            raise EmbeddingModelMismatchError(
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
