"""What the evaluation needs from a model, and how it feeds one: batched, longest texts first.

Anything with a ``name``, a ``fingerprint()`` and the two encode methods below can be evaluated: a
PromptEmbedder, the training-free baselines in :mod:`promptembedder.evaluation.baselines`, or a fake in a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

Side = Literal["query", "document"]


@runtime_checkable
class Encoder(Protocol):
    """An embedding model as the evaluation sees it.

    ``encode_queries`` embeds the instruction-bearing side (queries, and both sides of symmetric tasks such as
    STS); ``encode_documents`` embeds the corpus side, prompted or plain as the model itself decides.
    ``fingerprint()`` must change whenever anything that changes an embedding changes: the cache trusts it.

    An encoder whose documents depend on less than the whole model (plain documents through a frozen
    backbone ignore the instruction and the prompting weights) may also define ``document_fingerprint()``:
    a fingerprint of exactly what the document side depends on, or None. Encoders that share it share
    cached document embeddings, so a corpus is embedded once for all of them. One that takes no instruction
    at all may set ``ignores_instruction = True``: its cached embeddings then serve every instruction.
    """

    name: str

    def fingerprint(self) -> str: ...

    def encode_queries(self, texts: list[str], instruction: str | None, batch_size: int = 32) -> np.ndarray: ...

    def encode_documents(self, texts: list[str], instruction: str | None, batch_size: int = 32) -> np.ndarray: ...


def document_fingerprint(encoder: Encoder) -> str | None:
    """The encoder's optional ``document_fingerprint()`` (see :class:`Encoder`), else None."""
    method = getattr(encoder, "document_fingerprint", None)
    return method() if callable(method) else None


def encode_sorted(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    side: Side,
    instruction: str | None,
    batch_size: int = 32,
    progress: bool | None = None,
    desc: str | None = None,
) -> np.ndarray:
    """Embed ``texts`` as a float32 ``(n, d)`` array in their original order.

    Texts go to the encoder longest first, in chunks of a few batches: similar lengths share a batch, so
    little compute is spent on padding, and a batch too large for memory fails at the start, not the end.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    # A few batches per call amortise per-call costs (e.g. generating the soft prompt) but keep the bar moving.
    chunk = max(1, batch_size) * 4
    encode = encoder.encode_queries if side == "query" else encoder.encode_documents
    show = len(texts) > 2 * chunk if progress is None else progress
    out: np.ndarray | None = None
    with tqdm(total=len(texts), desc=desc or f"{side}s", unit="text", disable=not show, leave=False) as bar:
        for start in range(0, len(texts), chunk):
            idx = order[start : start + chunk]
            vectors = np.asarray(encode([texts[i] for i in idx], instruction, batch_size=batch_size))
            vectors = vectors.reshape(len(idx), -1).astype(np.float32, copy=False)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
            bar.update(len(idx))
    assert out is not None
    return out
