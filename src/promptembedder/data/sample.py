"""The small in-repository sample: a few hundred lines of every file of a full build, chosen by seeded
shuffles, so that tests and the quick demo run without the full build.

A file gets at most ``lines`` records and stays under ``max_bytes`` (long texts such as BBC articles and
Debian descriptions hit the byte cap first). Retrieval files keep their qrels whole: a sampled query
brings its relevant documents, then random other documents are added as distractors.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from promptembedder.data.build import record_counts, write_json
from promptembedder.data.format import load_eval_task, load_train_file, sha256_file, write_jsonl_atomic

SAMPLE_LINES = 300
SAMPLE_BYTES = 70_000
# A training file gets less: there are 22 of them, and the demo needs a taste of every task rather than
# much of any one (the sample ships inside the package).
TRAIN_SAMPLE_LINES = 200
TRAIN_SAMPLE_BYTES = 30_000


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _size(rec: dict[str, Any]) -> int:
    return len(json.dumps(rec, ensure_ascii=False).encode("utf-8")) + 1


class _Budget:
    def __init__(self, lines: int, max_bytes: int) -> None:
        self.lines, self.bytes = lines, max_bytes

    def take(self, recs: list[dict[str, Any]]) -> bool:
        """Spend on ``recs`` if all of them fit."""
        size = sum(map(_size, recs))
        if len(recs) > self.lines or size > self.bytes:
            return False
        self.lines -= len(recs)
        self.bytes -= size
        return True


def _pick(records: list[dict[str, Any]], budget: _Budget, rng: random.Random) -> list[dict[str, Any]]:
    """A random subset under the budget, in the original order."""
    order = list(range(len(records)))
    rng.shuffle(order)
    chosen = [i for i in order if budget.take([records[i]])]
    return [records[i] for i in sorted(chosen)]


def _sample_retrieval(recs: list[dict[str, Any]], lines: int, max_bytes: int, rng: random.Random) -> list[dict]:
    queries = [r for r in recs if r["kind"] == "query"]
    docs = {r["id"]: r for r in recs if r["kind"] == "doc"}
    rels: dict[str, list[str]] = {}
    for r in recs:
        if r["kind"] == "qrel":
            rels.setdefault(r["query_id"], []).append(r["doc_id"])
    # Up to two thirds of the lines (query, answer, qrel) and half the bytes go to queries with their
    # answers; the rest to distractors, so a sampled task is still a search, not a lookup.
    first = _Budget(lines * 2 // 3, max_bytes // 2)
    kept_q: set[str] = set()
    kept_d: set[str] = set()
    order = list(range(len(queries)))
    rng.shuffle(order)
    for i in order:
        q = queries[i]
        new_docs = [docs[d] for d in rels[q["id"]] if d not in kept_d]
        if first.take([q, *new_docs, *({"qrel": d} for d in rels[q["id"]])]):
            kept_q.add(q["id"])
            kept_d.update(d["id"] for d in new_docs)
    rest = _Budget(lines - (lines * 2 // 3 - first.lines), max_bytes - (max_bytes // 2 - first.bytes))
    others = [d for d in docs.values() if d["id"] not in kept_d]
    kept_d.update(d["id"] for d in _pick(others, rest, rng))
    return [
        r
        for r in recs
        if (r["kind"] == "query" and r["id"] in kept_q)
        or (r["kind"] == "doc" and r["id"] in kept_d)
        or (r["kind"] == "qrel" and r["query_id"] in kept_q)
    ]


def sample_records(
    recs: list[dict[str, Any]], task_type: str | None, seed: str, lines: int, max_bytes: int
) -> list[dict[str, Any]]:
    """The sampled records of one file (``task_type`` None for a training file; header excluded)."""
    rng = random.Random(seed)
    if task_type == "retrieval":
        return _sample_retrieval(recs, lines, max_bytes, rng)
    if task_type == "classification":
        # Three quarters of the budget to the probe's training side, a quarter to its test side.
        kept = []
        for split, share in (("train", 0.75), ("test", 0.25)):
            part = [r for r in recs if r["split"] == split]
            kept += _pick(part, _Budget(int(lines * share), int(max_bytes * share)), rng)
        ids = {id(r) for r in kept}
        return [r for r in recs if id(r) in ids]
    return _pick(recs, _Budget(lines, max_bytes), rng)


def make_sample(
    full_dir: Path, out_dir: Path, lines: int = SAMPLE_LINES, max_bytes: int = SAMPLE_BYTES
) -> dict[str, Any]:
    """Write a sample of the build in ``full_dir`` to ``out_dir``; return its manifest."""
    full = json.loads((full_dir / "manifest.json").read_text(encoding="utf-8"))
    files = []
    for f in full["files"]:
        src_path, dst = full_dir / f["path"], out_dir / f["path"]
        recs = _read(src_path)
        if f["split"] == "eval":
            header, body = recs[0], recs[1:]
            write_jsonl_atomic(dst, [header, *sample_records(body, header["task_type"], f["path"], lines, max_bytes)])
            task = load_eval_task(dst)
            count, records = len(task), record_counts(task)
        else:
            budget = (min(lines, TRAIN_SAMPLE_LINES), min(max_bytes, TRAIN_SAMPLE_BYTES))
            write_jsonl_atomic(dst, sample_records(recs, None, f["path"], *budget))
            examples = load_train_file(dst)
            count, records = len(examples), {"negatives": sum(len(e.negatives) for e in examples)}
        files.append(
            {
                **f,
                "count": count,
                "records": records,
                "sha256": sha256_file(dst),
                "bytes": dst.stat().st_size,
                "full_count": f["count"],
                "full_sha256": f["sha256"],
            }
        )
    if "instructions" in full:  # the wordings of every task travel whole: they are small
        instr = full["instructions"]["path"]
        (out_dir / instr).parent.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / instr, json.loads((full_dir / instr).read_text(encoding="utf-8")))
    manifest = {
        **{k: v for k, v in full.items() if k != "files"},
        "files": files,
        "sample": {
            "lines_per_file": lines,
            "max_bytes_per_file": max_bytes,
            "train_lines_per_file": min(lines, TRAIN_SAMPLE_LINES),
            "train_max_bytes_per_file": min(max_bytes, TRAIN_SAMPLE_BYTES),
            "of": full["format"],
        },
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
