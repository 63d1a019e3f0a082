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


def test_the_mine_command_writes_mined_negatives_that_training_reads(tmp_path, monkeypatch):
    """End to end on a tiny backbone: `data mine` writes a data folder whose examples carry mined negatives
    (none an answer of its own query), a second run embeds nothing again, and the trainer reads them."""
    import json

    from typer.testing import CliRunner

    from promptembedder.data.cli import app
    from promptembedder.data.format import load_train_file
    from promptembedder.training.config import load_config
    from promptembedder.training.trainer import Trainer, load_training_data

    from tiny import save_tiny_pair, write_tiny_train_files

    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "home"))
    _, backbone = save_tiny_pair(tmp_path)
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    write_tiny_train_files(data / "train")
    (data / "train" / "instructions.json").write_text(json.dumps({"animals": ["a", "b"], "music": ["c", "d"]}))
    args = ["mine", "--data", str(data), "--model", backbone, "--per-task", "20", "--top-k", "2", "--skip", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    mined_dir = data / "mined" / "train"
    for task in ("animals", "music"):
        rows = load_train_file(mined_dir / f"{task}.jsonl")
        assert len(rows) == 48  # every example is kept; 20 of them are mined
        assert [r.query for r in rows] == [r.query for r in load_train_file(data / "train" / f"{task}.jsonl")]
        answers = {}
        for r in rows:
            answers.setdefault(r.query.casefold(), set()).add(r.positive)
        mined = [r for r in rows if r.mined_negatives]
        assert len(mined) == 20
        for r in mined:
            assert len(r.mined_negatives) == 2 and not set(r.mined_negatives) & answers[r.query.casefold()]
    assert (mined_dir / "instructions.json").is_file()
    meta = json.loads((data / "mined" / "mined.json").read_text())
    assert meta["settings"]["top_k"] == 2 and set(meta["tasks"]) == {"animals", "music"}

    cached = sorted((tmp_path / "home" / "embeddings").rglob("*.npy"))
    assert cached  # a second run reads every embedding back instead of computing it
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert [p.stat().st_mtime_ns for p in cached] == stamps

    config = load_config(None, [f"data.train_files=[{mined_dir}]", "data.negatives=mined", "data.dev_per_task=0"])
    train, _ = load_training_data(config)
    trainer = Trainer.__new__(Trainer)
    trainer.config = config
    example = next(e for e in train["animals"] if e.mined_negatives)
    assert trainer._negatives(example) == example.mined_negatives
    plain = next(e for e in train["animals"] if not e.mined_negatives)
    assert trainer._negatives(plain) == plain.negatives  # not mined: its given negatives

    only = CliRunner().invoke(app, [*args, "--mined-only", "--out", str(tmp_path / "only")])
    assert only.exit_code == 0, only.output
    for task in ("animals", "music"):
        rows = load_train_file(tmp_path / "only" / "train" / f"{task}.jsonl")
        assert len(rows) == 20 and all(r.mined_negatives for r in rows)
        full = [(r.query, r.positive, r.mined_negatives) for r in load_train_file(mined_dir / f"{task}.jsonl")]
        assert [(r.query, r.positive, r.mined_negatives) for r in rows] == [x for x in full if x[2]]  # same draw
    assert json.loads((tmp_path / "only" / "mined.json").read_text())["mined_only"] is True


def test_mine_refuses_bad_input_with_one_message(tmp_path):
    from typer.testing import CliRunner

    from promptembedder.data.cli import app

    no_data = CliRunner().invoke(app, ["mine", "--data", str(tmp_path / "none")])
    assert no_data.exit_code == 2 and "promptembedder data build" in no_data.output
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "train" / "t.jsonl").write_text("")
    bad_model = CliRunner().invoke(app, ["mine", "--data", str(tmp_path / "d"), "--model", "no-such-model"])
    assert bad_model.exit_code == 2 and "no-such-model" in bad_model.output
    one = CliRunner().invoke(app, ["mine", "--data", str(tmp_path / "d"), "--per-task", "1"])
    assert one.exit_code == 2 and "per_task" in one.output
    pool = CliRunner().invoke(app, ["mine", "--data", str(tmp_path / "d"), "--pooling", "max"])
    assert pool.exit_code == 2 and "--pooling 'max'" in pool.output and "mean+last" in pool.output
