"""The shared JSONL format: good files load, every kind of bad line is reported as path:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptembedder.data.format import (
    DataFormatError,
    eval_header,
    load_eval_task,
    load_train_file,
    write_jsonl_atomic,
)

TRAIN_OK = {"task": "t", "instruction": "Do it", "query": "q", "positive": "p", "negatives": ["n"]}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_train_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    write_jsonl_atomic(p, [TRAIN_OK, {**TRAIN_OK, "negatives": []}])
    ex = load_train_file(p)
    assert len(ex) == 2 and ex[0].negatives == ["n"] and ex[1].negatives == []


def test_mined_negatives_roundtrip_and_stay_absent_when_empty(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    write_jsonl_atomic(p, [{**TRAIN_OK, "mined_negatives": ["m1", "m2"]}, TRAIN_OK])
    mined, plain = load_train_file(p)
    assert mined.mined_negatives == ["m1", "m2"] and plain.mined_negatives == []
    assert mined.to_json()["mined_negatives"] == ["m1", "m2"]
    assert "mined_negatives" not in plain.to_json()  # unmined files are written exactly as before
    q = tmp_path / "again.jsonl"
    write_jsonl_atomic(q, [e.to_json() for e in (mined, plain)])
    assert q.read_bytes() == p.read_bytes()


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty line"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({k: v for k, v in TRAIN_OK.items() if k != "positive"}), "missing the key 'positive'"),
        (json.dumps({**TRAIN_OK, "negatives": "n"}), "'negatives' must be list"),
        (json.dumps({**TRAIN_OK, "negatives": [1]}), "'negatives'[0] must be str"),
        (json.dumps({**TRAIN_OK, "query": "  "}), "'query' is empty"),
        (json.dumps({**TRAIN_OK, "extra": 1}), "unknown key(s) 'extra'"),
        (json.dumps({**TRAIN_OK, "mined_negatives": "n"}), "'mined_negatives' must be list"),
        (json.dumps({**TRAIN_OK, "mined_negatives": ["ok", 2]}), "'mined_negatives'[1] must be str"),
    ],
)
def test_train_bad_line_names_file_and_line(tmp_path: Path, bad: str, needle: str) -> None:
    p = _write(tmp_path / "t.jsonl", [json.dumps(TRAIN_OK), json.dumps(TRAIN_OK), bad])
    with pytest.raises(DataFormatError) as err:
        load_train_file(p)
    assert str(err.value).startswith(f"{p}:3: ")
    assert needle in str(err.value)
    assert err.value.line == 3


def _retrieval(extra: list[dict] | None = None) -> list[dict]:
    return [
        eval_header("r", "retrieval", "Find it", "src", "desc"),
        {"kind": "query", "id": "q1", "text": "question"},
        {"kind": "doc", "id": "d1", "text": "answer"},
        {"kind": "doc", "id": "d2", "text": "other"},
        {"kind": "qrel", "query_id": "q1", "doc_id": "d1", "score": 1},
        *(extra or []),
    ]


def test_retrieval_loads(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    write_jsonl_atomic(p, _retrieval())
    task = load_eval_task(p)
    assert task.task_type == "retrieval" and len(task) == 1
    assert task.qrels == {"q1": {"d1": 1}} and set(task.corpus) == {"d1", "d2"}
    assert len(task.data_hash) == 64


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"kind": "qrel", "query_id": "q9", "doc_id": "d1", "score": 1}, "unknown query id 'q9'"),
        ({"kind": "qrel", "query_id": "q1", "doc_id": "d9", "score": 1}, "unknown doc id 'd9'"),
        ({"kind": "qrel", "query_id": "q1", "doc_id": "d2", "score": True}, "'score' must be int"),
        ({"kind": "doc", "id": "d1", "text": "again"}, "duplicate doc id 'd1'"),
        ({"kind": "item", "text": "x", "label": "y"}, "kind 'item' does not belong"),
    ],
)
def test_retrieval_bad_record(tmp_path: Path, extra: dict, needle: str) -> None:
    p = tmp_path / "r.jsonl"
    write_jsonl_atomic(p, _retrieval([extra]))
    with pytest.raises(DataFormatError, match=needle) as err:
        load_eval_task(p)
    assert str(err.value).startswith(f"{p}:6: ")


def test_unjudged_query_rejected(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    write_jsonl_atomic(p, _retrieval([{"kind": "query", "id": "q2", "text": "lonely"}]))
    with pytest.raises(DataFormatError, match="'q2' has no qrel"):
        load_eval_task(p)


def test_withheld_instruction_is_optional_and_checked(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    pair = {"kind": "pair", "text1": "a", "text2": "b", "score": 1.0}
    write_jsonl_atomic(p, [eval_header("e", "sts", "Trained wording", "s", "d", "Withheld wording"), pair])
    task = load_eval_task(p)
    assert (task.instruction, task.withheld_instruction) == ("Trained wording", "Withheld wording")
    write_jsonl_atomic(p, [eval_header("e", "sts", "Trained wording", "s", "d"), pair])
    assert "withheld_instruction" not in eval_header("e", "sts", "i", "s", "d")
    assert load_eval_task(p).withheld_instruction == ""
    for bad, needle in ((3, "'withheld_instruction' must be str"), ("  ", "'withheld_instruction' is empty")):
        write_jsonl_atomic(p, [{**eval_header("e", "sts", "i", "s", "d"), "withheld_instruction": bad}, pair])
        with pytest.raises(DataFormatError, match=needle):
            load_eval_task(p)


def test_header_checked(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    write_jsonl_atomic(p, [{"kind": "pair", "text1": "a", "text2": "b", "score": 1.0}])
    with pytest.raises(DataFormatError, match=r":1: the first line must be the header"):
        load_eval_task(p)
    write_jsonl_atomic(p, [{**eval_header("e", "sts", "i", "s", "d"), "task_type": "nli"}])
    with pytest.raises(DataFormatError, match="unknown task_type 'nli'"):
        load_eval_task(p)


@pytest.mark.parametrize(
    ("ttype", "good", "bad", "needle"),
    [
        (
            "sts",
            {"kind": "pair", "text1": "a", "text2": "b", "score": 3},
            {"kind": "pair", "text1": "a"},
            "missing the key 'text2'",
        ),
        (
            "pair_classification",
            {"kind": "pair", "text1": "a", "text2": "b", "label": 1},
            {"kind": "pair", "text1": "a", "text2": "b", "label": 2},
            "must be 0 or 1",
        ),
        (
            "classification",
            {"kind": "item", "text": "a", "label": "x", "split": "train"},
            {"kind": "item", "text": "a", "label": "x", "split": "dev"},
            "'split' must be 'train' or 'test'",
        ),
        (
            "clustering",
            {"kind": "item", "text": "a", "label": "x"},
            {"kind": "item", "text": "a", "label": 3},
            "'label' must be str",
        ),
        (
            "reranking",
            {"kind": "sample", "query": "q", "positive": ["p"], "negative": ["n"]},
            {"kind": "sample", "query": "q", "positive": ["p"], "negative": []},
            "'negative' is empty",
        ),
    ],
)
def test_each_type(tmp_path: Path, ttype: str, good: dict, bad: dict, needle: str) -> None:
    p = tmp_path / "e.jsonl"
    good2 = {**good, "split": "test"} if ttype == "classification" else good
    write_jsonl_atomic(p, [eval_header("e", ttype, "i", "s", "d"), good, good2])
    task = load_eval_task(p)
    assert len(task) == 2
    write_jsonl_atomic(p, [eval_header("e", ttype, "i", "s", "d"), good, good2, bad])
    with pytest.raises(DataFormatError, match=needle) as err:
        load_eval_task(p)
    assert err.value.line == 4


def test_atomic_write_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rec = {"z": "é", "a": [1, 2]}
    write_jsonl_atomic(a, [rec])
    write_jsonl_atomic(b, [dict(reversed(list(rec.items())))])
    assert a.read_bytes() == b.read_bytes() == '{"a": [1, 2], "z": "é"}\n'.encode()
    assert not list(tmp_path.glob(".*tmp*"))
