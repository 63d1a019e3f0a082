"""The Lee, Pincombe and Welsh (2005) news similarity set as shipped in PyPI ``gensim`` 4.4.0's test data:
``lee.cor`` (50 documents, one per line) and ``similarities0-1.txt`` (a 50x50 matrix of mean human
ratings scaled to 0..1, tab-separated; only the upper triangle is used, as the pairs are unordered)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources.pypi import package_dir, read_text
from promptembedder.data.text import squash


@dataclass(frozen=True)
class LeePair:
    i: int
    j: int
    text1: str
    text2: str
    score: float


def parse_lee(corpus: str, matrix: str, name: str = "similarities0-1.txt") -> list[LeePair]:
    docs = [squash(line) for line in corpus.splitlines() if line.strip()]
    rows = [line.split() for line in matrix.splitlines() if line.strip()]
    n = len(docs)
    if len(rows) != n:
        raise ValueError(f"{name}: {len(rows)} rows for {n} documents")
    pairs: list[LeePair] = []
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ValueError(f"{name}:{i + 1}: {len(row)} columns, expected {n}")
        for j in range(i + 1, n):
            pairs.append(LeePair(i, j, docs[i], docs[j], float(row[j])))
    return pairs


def data_dir() -> Path:
    return package_dir("gensim", "pip install --no-deps gensim==4.4.0") / "test" / "test_data"


def load_pairs(directory: Path | None = None) -> list[LeePair]:
    d = directory or data_dir()
    return parse_lee(read_text(d / "lee.cor"), read_text(d / "similarities0-1.txt"), str(d / "similarities0-1.txt"))
