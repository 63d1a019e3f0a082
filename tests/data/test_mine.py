"""Mining ranks a task's documents for each query with the frozen backbone's vectors, never returns an answer
of the same query, and passes over the nearest few (the false-negative guard)."""

from __future__ import annotations

import numpy as np
import pytest

from promptembedder.data.format import TrainExample
from promptembedder.data.mine import MineSettings, mine_task, subsample


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_mined_negatives_skip_the_nearest_and_never_answer_the_same_query():
    examples = [
        TrainExample("t", "i", "bank", "edge of a river"),
        TrainExample("t", "i", "Bank", "a money lender", ["a seat"]),
        TrainExample("t", "i", "tree", "a tall plant"),
    ]
    # Documents in first-seen order: edge of a river, a money lender, a seat, a tall plant.
    doc_vecs = {
        "edge of a river": _unit(1, 0, 0),
        "a money lender": _unit(0.9, 0.1, 0),
        "a seat": _unit(0.8, 0.3, 0),
        "a tall plant": _unit(0, 0, 1),
    }
    query_vecs = {"bank": _unit(1, 0, 0), "Bank": _unit(0.9, 0.1, 0), "tree": _unit(0.1, 0, 1)}
    mined, stats = mine_task(
        examples,
        lambda texts: np.stack([query_vecs[t] for t in texts]),
        lambda texts: np.stack([doc_vecs[t] for t in texts]),
        MineSettings(top_k=1, skip=0, per_task=None),
    )
    # "bank" and "Bank" are one query: neither's answer is the other's negative.
    assert mined[0] == ["a seat"] and mined[1] == ["a seat"]
    assert mined[2] == ["edge of a river"]  # the nearest document that is not its answer
    assert stats["documents"] == 4 and stats["positive_top1"] == 1.0

    skipped, _ = mine_task(
        examples,
        lambda texts: np.stack([query_vecs[t] for t in texts]),
        lambda texts: np.stack([doc_vecs[t] for t in texts]),
        MineSettings(top_k=2, skip=1, per_task=None),
    )
    assert skipped[0] == ["a tall plant"]  # "a seat" passed over; only one document is left after it
    assert skipped[2] == ["a money lender", "a seat"]


def test_subsample_is_seeded_and_keeps_file_order():
    examples = [TrainExample("t", "i", f"q{i}", f"p{i}") for i in range(50)]
    a = subsample(examples, 10, seed=0, task="t")
    assert a == subsample(examples, 10, seed=0, task="t") and a != subsample(examples, 10, seed=1, task="t")
    assert [examples.index(e) for e in a] == sorted(examples.index(e) for e in a)
    assert subsample(examples, None, 0, "t") == examples


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="top_k"):
        MineSettings(top_k=0)
