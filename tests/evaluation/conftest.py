"""Fakes for the evaluation tests: a deterministic bag-of-words encoder and tiny eval files of every type."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

DIM = 48


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=DIM)


class FakeEncoder:
    """Sum of per-word random vectors (so shared words mean similar texts), normalised.

    Queries with an instruction get a small instruction-dependent offset, so the instruction matters.
    ``calls`` counts texts per side; ``version`` is part of the fingerprint (bump it to "retrain").
    """

    def __init__(self, name: str = "fake", version: int = 0, noise: float = 0.01) -> None:
        self.name = name
        self.version = version
        self.noise = noise
        self.calls = {"query": 0, "document": 0}
        self.instructions: list[str | None] = []

    def fingerprint(self) -> str:
        return f"{self.name}-v{self.version}-n{self.noise}"

    def _embed(self, texts: list[str], offset: np.ndarray | None) -> np.ndarray:
        out = []
        for text in texts:
            v = sum((_word_vector(w) for w in text.lower().split()), np.zeros(DIM))
            v = v + self.noise * _word_vector("#" + text)  # text-specific noise; a little breaks exact ties
            if offset is not None:
                v = v + offset
            out.append(v / (np.linalg.norm(v) or 1.0))
        return np.asarray(out, dtype=np.float32)

    def encode_queries(self, texts: list[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        self.calls["query"] += len(texts)
        self.instructions.append(instruction)
        offset = 0.3 * _word_vector("instr:" + instruction) if instruction else None
        return self._embed(list(texts), offset)

    def encode_documents(self, texts: list[str], instruction: str | None, batch_size: int = 32) -> np.ndarray:
        self.calls["document"] += len(texts)
        return self._embed(list(texts), None)


def write_eval(path: Path, task_type: str, records: list[dict], instruction: str = "Do the task") -> Path:
    head = {
        "kind": "meta",
        "name": path.stem,
        "task_type": task_type,
        "instruction": instruction,
        "source": "test",
        "description": f"a tiny {task_type} task",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in [head, *records]) + "\n", encoding="utf-8")
    return path


TOPICS = {
    "animals": ["cat dog bird", "fish bird tree", "dog cat run", "bird sings song", "cat eats fish"],
    "money": ["bank money price", "stock market fell", "price rose stocks", "money bank loan", "market price up"],
    "music": ["guitar piano song", "song music play", "piano plays music", "guitar song played", "music song band"],
}


def _retrieval_records() -> list[dict]:
    recs = []
    for t, texts in TOPICS.items():
        for i, text in enumerate(texts):
            recs.append({"kind": "doc", "id": f"{t}-{i}", "text": text})
    queries = [
        ("q1", "cat dog", ["animals-0", "animals-2"]),
        ("q2", "stock price", ["money-2", "money-4"]),
        ("q3", "piano song", ["music-0", "music-2"]),
        ("q4", "bird fish", ["animals-1"]),
    ]
    for qid, text, rel in queries:
        recs.append({"kind": "query", "id": qid, "text": text})
        for grade, d in enumerate(rel):
            recs.append({"kind": "qrel", "query_id": qid, "doc_id": d, "score": 2 - grade})
    return recs


def _all_records() -> dict[str, tuple[str, list[dict]]]:
    items = [(t, text) for t, texts in TOPICS.items() for text in texts]
    return {
        "tiny-retrieval": ("retrieval", _retrieval_records()),
        "tiny-reranking": (
            "reranking",
            [
                {
                    "kind": "sample",
                    "query": "cat dog",
                    "positive": ["dog cat run"],
                    "negative": ["bank money price", "guitar piano song"],
                },
                {
                    "kind": "sample",
                    "query": "market price",
                    "positive": ["stock market fell", "market price up"],
                    "negative": ["cat eats fish", "song music play", "bird sings song"],
                },
                {
                    "kind": "sample",
                    "query": "song",
                    "positive": ["bird sings song"],
                    "negative": ["song music play", "money bank loan"],
                },
            ],
        ),
        "tiny-sts": (
            "sts",
            [
                {"kind": "pair", "text1": a, "text2": b, "score": s}
                for a, b, s in [
                    ("cat dog bird", "dog cat bird", 5.0),
                    ("cat dog bird", "cat dog fish", 3.5),
                    ("bank money", "money price bank", 3.0),
                    ("guitar song", "song piano", 2.0),
                    ("cat dog", "stock market", 0.0),
                    ("song music", "bank loan", 0.5),
                    ("fish tree", "fish bird", 2.5),
                ]
            ],
        ),
        "tiny-pairs": (
            "pair_classification",
            [
                {"kind": "pair", "text1": a, "text2": b, "label": y}
                for a, b, y in [
                    ("cat dog bird", "dog cat bird", 1),
                    ("bank money", "money bank", 1),
                    ("guitar song", "song guitar", 1),
                    ("cat dog", "stock market", 0),
                    ("song music", "bank loan", 0),
                    ("fish tree", "piano plays", 0),
                    ("bird song", "bird sings song", 1),
                    ("price rose", "cat eats", 0),
                ]
            ],
        ),
        "tiny-classification": (
            "classification",
            [
                {"kind": "item", "text": text, "label": t, "split": "train" if i % 2 == 0 else "test"}
                for i, (t, text) in enumerate(items + [(t, text + " " + text.split()[0]) for t, text in items])
            ],
        ),
        "tiny-clustering": ("clustering", [{"kind": "item", "text": text, "label": t} for t, text in items]),
    }


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """A built-data-like folder ``DIR/eval/*.jsonl`` with one tiny task per task type."""
    root = tmp_path / "data"
    for name, (task_type, records) in _all_records().items():
        write_eval(root / "eval" / f"{name}.jsonl", task_type, records, instruction=f"Instruction for {name}")
    (root / "manifest.json").write_text("{}", encoding="utf-8")
    return root


@pytest.fixture
def fake_encoder() -> type[FakeEncoder]:
    return FakeEncoder


@pytest.fixture(name="write_eval")
def write_eval_fixture():
    """``write_eval(path, task_type, records, instruction=...)``: write one eval file, return its path."""
    return write_eval
