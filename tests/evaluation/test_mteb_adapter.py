"""mteb's own evaluators, run through our adapter on our eval files, agree with our metrics.

No download: each task is one of our files wrapped by ``to_mteb_task`` (its ``load_data`` reads the file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mteb")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import mteb  # noqa: E402

from promptembedder.data import load_eval_task  # noqa: E402
from promptembedder.evaluation import EvalOptions, evaluate_task  # noqa: E402
from promptembedder.evaluation.mteb_adapter import MTEBEncoder, to_mteb_task  # noqa: E402

VOCAB = {
    "animals": "cat dog bird fish tree river run walk eat".split(),
    "money": "bank money price stock stocks market fell rose loan".split(),
    "music": "guitar piano song music play plays played band sing".split(),
}
NOISE = "the a of and to in is for on with big small old new good bad".split()


def _text(rng: np.random.Generator, topic: str, n: int = 4) -> str:
    words = list(rng.choice(VOCAB[topic], size=n - 1)) + list(rng.choice(NOISE, size=2))
    rng.shuffle(words)
    return " ".join(words)


def _records(task_type: str, rng: np.random.Generator) -> list[dict]:
    topics = list(VOCAB)
    if task_type == "retrieval":
        recs = [{"kind": "doc", "id": f"d{i:02d}", "text": _text(rng, topics[i % 3])} for i in range(30)]
        for q in range(9):
            recs.append({"kind": "query", "id": f"q{q}", "text": _text(rng, topics[q % 3], 3)})
            for j, d in enumerate(rng.choice(np.arange(q % 3, 30, 3), size=3, replace=False)):
                recs.append({"kind": "qrel", "query_id": f"q{q}", "doc_id": f"d{d:02d}", "score": 2 if j == 0 else 1})
        return recs
    if task_type == "reranking":
        return [
            {
                "kind": "sample",
                "query": _text(rng, topics[i % 3], 3),
                "positive": [_text(rng, topics[i % 3]) for _ in range(2)],
                "negative": [_text(rng, topics[(i + 1 + j) % 3]) for j in range(4)],
            }
            for i in range(8)
        ]
    if task_type in ("sts", "pair_classification"):
        recs = []
        for i in range(24):
            same = i % 2 == 0
            a, b = topics[i % 3], topics[i % 3] if same else topics[(i + 1) % 3]
            target = (
                {"score": float(rng.uniform(2.5, 5) if same else rng.uniform(0, 2.5))}
                if task_type == "sts"
                else {"label": int(same)}
            )
            recs.append({"kind": "pair", "text1": _text(rng, a), "text2": _text(rng, b), **target})
        return recs
    if task_type == "classification":
        return [
            {
                "kind": "item",
                "text": _text(rng, topics[i % 3]),
                "label": topics[i % 3],
                "split": "train" if i < 48 else "test",
            }
            for i in range(78)
        ]
    return [{"kind": "item", "text": _text(rng, topics[i % 3]), "label": topics[i % 3]} for i in range(36)]


TASK_TYPES = ["retrieval", "reranking", "sts", "classification", "clustering", "pair_classification"]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_mteb_agrees_with_our_metrics(task_type: str, tmp_path: Path, fake_encoder, write_eval) -> None:
    rng = np.random.default_rng(TASK_TYPES.index(task_type))
    path = write_eval(
        tmp_path / f"agree-{task_type}.jsonl",
        task_type,
        _records(task_type, rng),
        instruction=f"Instruction for {task_type}",
    )
    task = load_eval_task(path)

    # clustering: mteb's (legacy) evaluator runs k-means once, with seed 42; ours averages seeds from 42 up
    ours = evaluate_task(fake_encoder(noise=1.5), task, options=EvalOptions(clustering_seeds=1))
    assert 0.05 < ours.main_score < 0.999  # a real test: neither trivial nor broken

    seen = fake_encoder(noise=1.5)
    result = mteb.evaluate(MTEBEncoder(seen), to_mteb_task(task), cache=None, show_progress_bar=False)
    theirs = result.task_results[0].get_score()
    assert theirs == pytest.approx(ours.main_score, abs=1e-4)
    # the adapter passed the task's instruction through, and documents went to the document side
    assert set(seen.instructions) == {task.instruction}
    assert (seen.calls["document"] > 0) == (task_type in ("retrieval", "reranking"))


def test_adapter_is_an_mteb_encoder(fake_encoder) -> None:
    from mteb.models import EncoderProtocol, SearchProtocol

    adapter = MTEBEncoder(fake_encoder(name="fake model"), instructions={"SomeTask": "Do it"})
    assert isinstance(adapter, EncoderProtocol) and not isinstance(adapter, SearchProtocol)
    assert adapter.mteb_model_meta.name == "promptembedder/fake-model"
