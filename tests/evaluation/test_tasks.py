"""Running tasks: sides and instructions, subsampling, and the embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptembedder.data import load_eval_task
from promptembedder.evaluation import EmbeddingCache, EvalOptions, encode_sorted, evaluate_task
from promptembedder.evaluation.tasks import MAIN_METRIC


def test_every_task_type_runs(eval_dir: Path, fake_encoder) -> None:
    enc = fake_encoder()
    for path in sorted((eval_dir / "eval").glob("*.jsonl")):
        task = load_eval_task(path)
        res = evaluate_task(enc, task)
        assert res.main_metric == MAIN_METRIC[task.task_type]
        assert res.main_score == res.scores[res.main_metric]
        assert -1.0 <= res.main_score <= 1.0 and not res.subsampled
    # each task's own instruction reached the encoder
    assert {f"Instruction for {p.stem}" for p in (eval_dir / "eval").glob("*.jsonl")} <= set(enc.instructions)


def test_sides(eval_dir: Path, fake_encoder) -> None:
    enc = fake_encoder()
    evaluate_task(enc, load_eval_task(eval_dir / "eval" / "tiny-retrieval.jsonl"))
    assert enc.calls == {"query": 4, "document": 15}
    enc = fake_encoder()
    evaluate_task(enc, load_eval_task(eval_dir / "eval" / "tiny-sts.jsonl"))
    assert enc.calls["document"] == 0  # symmetric: both sides are embedded like queries, instruction and all


def test_encode_sorted_restores_order(fake_encoder) -> None:
    enc = fake_encoder()
    texts = ["a", "a b c d", "a b", "a b c", "b"] * 7
    batched = encode_sorted(enc, texts, side="query", instruction=None, batch_size=2)
    np.testing.assert_allclose(batched, enc.encode_queries(texts, None), atol=1e-6)


def test_subsampling_keeps_judged_documents(eval_dir: Path, fake_encoder) -> None:
    task = load_eval_task(eval_dir / "eval" / "tiny-retrieval.jsonl")
    res = evaluate_task(fake_encoder(), task, options=EvalOptions(max_corpus=8, limit=3))
    assert res.subsampled["queries"] == [3, 4]
    assert res.size["corpus"] >= 8 and res.subsampled["corpus"][1] == 15
    again = evaluate_task(fake_encoder(), task, options=EvalOptions(max_corpus=8, limit=3))
    assert again.scores == res.scores  # deterministic
    # judged documents always stay: recall@100 over a cut corpus is still perfect for this easy encoder
    assert res.scores["recall_at_100"] == pytest.approx(1.0)


def _run_all(enc, eval_dir: Path, cache: EmbeddingCache) -> dict[str, float]:
    out = {}
    for path in sorted((eval_dir / "eval").glob("*.jsonl")):
        task = load_eval_task(path)
        out[task.name] = evaluate_task(enc, task, cache=cache).main_score
    return out


def test_cache_hits_when_nothing_changed(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    first = fake_encoder()
    scores = _run_all(first, eval_dir, cache)
    assert sum(first.calls.values()) > 0 and cache.hits == 0
    second = fake_encoder()
    assert _run_all(second, eval_dir, cache) == scores
    assert second.calls == {"query": 0, "document": 0}
    assert cache.hits == cache.misses
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # atomic writes leave nothing behind


def test_cache_misses_when_the_model_changes(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    _run_all(fake_encoder(), eval_dir, cache)
    retrained = fake_encoder(version=1)  # a new fingerprint
    _run_all(retrained, eval_dir, cache)
    assert retrained.calls["query"] > 0 and retrained.calls["document"] > 0


def test_cache_misses_only_for_the_task_whose_data_changed(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    _run_all(fake_encoder(), eval_dir, cache)
    path = eval_dir / "eval" / "tiny-sts.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["score"] = record["score"] - 1.0  # same texts, new data hash
    path.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n", encoding="utf-8")
    enc = fake_encoder()
    _run_all(enc, eval_dir, cache)
    n_texts = len({t for p in load_eval_task(path).pairs for t in (p.text1, p.text2)})
    assert enc.calls == {"query": n_texts, "document": 0}  # only the STS task was re-encoded


def test_cache_can_be_disabled(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    cache = EmbeddingCache(tmp_path / "cache", enabled=False)
    _run_all(fake_encoder(), eval_dir, cache)
    enc = fake_encoder()
    _run_all(enc, eval_dir, cache)
    assert enc.calls["query"] > 0 and not (tmp_path / "cache").exists()


def test_encoders_with_one_document_fingerprint_share_documents(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    class PlainDocs(fake_encoder):
        def document_fingerprint(self) -> str:
            return "same-backbone"

    cache = EmbeddingCache(tmp_path / "cache")
    task = load_eval_task(eval_dir / "eval" / "tiny-retrieval.jsonl")
    first = evaluate_task(PlainDocs(name="a"), task, cache=cache)
    other = PlainDocs(name="b")  # another model (fingerprint), same plain documents
    second = evaluate_task(other, task, cache=cache)
    assert other.calls == {"query": 4, "document": 0}
    assert second.scores == first.scores  # the fake's queries only differ by name: same numbers


def test_max_chars_cuts_long_texts_at_a_word(eval_dir: Path, fake_encoder) -> None:
    from promptembedder.evaluation.tasks import _cut

    assert _cut("short", 10) == "short"
    assert _cut("alpha beta gamma", 12) == "alpha beta"
    assert _cut("abcdefghijklmnop", 5) == "abcde"  # no space to cut at: hard cut

    enc = fake_encoder()
    task = load_eval_task(eval_dir / "eval" / "tiny-sts.jsonl")
    res = evaluate_task(enc, task, options=EvalOptions(max_chars=9))
    longer = {t for p in task.pairs for t in (p.text1, p.text2) if len(t) > 9}
    assert res.size["truncated_texts"] == len(longer) > 0
    assert "truncated_texts" not in evaluate_task(enc, task).size
