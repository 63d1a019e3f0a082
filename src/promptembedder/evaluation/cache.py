"""An on-disk cache of embeddings, so a re-run only encodes what changed.

One entry is the embeddings of one list of texts by one model for one side of one task. Its key hashes the
model fingerprint, the task's data hash, the side, the instruction and the texts themselves (which differ
when a task is subsampled differently). A new checkpoint or a rebuilt eval file therefore misses; a run
with neither changed hits and encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 of the texts in order (length-prefixed, so ["ab", "c"] and ["a", "bc"] differ)."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


class EmbeddingCache:
    """``root/<fingerprint>/<data hash>/<side>-<key>.npy``; ``enabled=False`` turns it into a pass-through."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> None:
        if root is None:
            from promptembedder.paths import embeddings_cache_dir

            root = embeddings_cache_dir()
        self.root = Path(root)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, fingerprint: str, data_hash: str, side: str, instruction: str | None, texts: Sequence[str]) -> Path:
        key = json.dumps([fingerprint, data_hash, side, instruction, texts_digest(texts)])
        name = f"{side}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"
        return self.root / _safe(fingerprint) / _safe(data_hash)[:16] / name

    def get_or_compute(
        self,
        fingerprint: str,
        data_hash: str,
        side: str,
        instruction: str | None,
        texts: Sequence[str],
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """The cached array for this key, or ``compute()``'s result, stored before it is returned."""
        if not self.enabled:
            return compute()
        path = self.path(fingerprint, data_hash, side, instruction, texts)
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape[0] == len(texts):
                    self.hits += 1
                    return arr
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed and overwritten
        self.misses += 1
        arr = compute()
        _save_atomic(path, arr)
        return arr


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in part) or "_"


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    # Write aside and rename: a reader (or a second run) never sees half an array.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
