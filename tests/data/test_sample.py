"""The sample shipped in the package: every file validates and matches its manifest."""

from __future__ import annotations

import json

from promptembedder.data import sample_dir
from promptembedder.data.format import list_eval_tasks, list_train_files, load_eval_task, load_train_file, sha256_file
from promptembedder.data.text import normalise


def test_sample_files_validate_and_match_the_manifest() -> None:
    d = sample_dir()
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = [p.relative_to(d).as_posix() for p in list_train_files(d) + list_eval_tasks(d)]
    assert sorted(on_disk) == sorted(listed)
    for path, f in listed.items():
        p = d / path
        assert sha256_file(p) == f["sha256"], f"{path} changed without regenerating the sample"
        n = len(load_eval_task(p)) if f["split"] == "eval" else len(load_train_file(p))
        assert n == f["count"] > 0 and f["full_count"] >= n


def test_sample_is_small() -> None:
    total = sum(p.stat().st_size for p in sample_dir().rglob("*") if p.is_file())
    assert total < 1_500_000


def test_sample_eval_texts_not_in_sample_training() -> None:
    d = sample_dir()
    train = {normalise(t) for p in list_train_files(d) for ex in load_train_file(p) for t in (ex.query, ex.positive)}
    for p in list_eval_tasks(d):
        task = load_eval_task(p)
        held = list(task.queries.values()) + [it.text for it in task.items]
        held += [t for pair in task.pairs for t in (pair.text1, pair.text2)]
        assert not {normalise(t) for t in held} & train, p.name
