"""bench/training/suite_table.py: runs of the held-out suite joined into one table, and shares of a reference."""

import json
import sys
from pathlib import Path

import pytest
from bench_scripts import load_bench_script


def load_script():
    return load_bench_script("training/suite_table.py")


def task(name: str, task_type: str, instruction_set: str) -> dict:
    return {
        "name": name,
        "task_type": task_type,
        "data_hash": "h-" + name.split("@")[0],
        "instruction_set": instruction_set,
    }


def results(label: str, scores: dict[str, float]) -> dict:
    types = {"a": "retrieval", "b": "sts"}
    tasks = [task(n, types[n], "trained") for n in types] + [task(f"{n}@withheld", types[n], "withheld") for n in types]
    model_tasks = {
        t["name"]: {"task": t["name"], "task_type": t["task_type"], "main_metric": "m", "main_score": scores[t["name"]]}
        for t in tasks
    }
    return {
        "format": 1,
        "options": {"limit": 300},
        "tasks": tasks,
        "models": [{"label": label, "spec": label, "fingerprint": "f", "tasks": model_tasks}],
    }


def write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_reference_gives_each_models_share_of_both_averages(tmp_path, monkeypatch, capsys):
    scratch = write(tmp_path, "s", results("x", {"a": 0.5, "b": 0.7, "a@withheld": 0.4, "b@withheld": 0.6}))
    moved = write(tmp_path, "t", results("y", {"a": 0.6, "b": 0.6, "a@withheld": 0.45, "b@withheld": 0.45}))
    out = tmp_path / "out"
    argv = ["suite_table.py", "--out", str(out), "--reference", "scratch", f"scratch={scratch}", f"transfer={moved}"]
    monkeypatch.setattr(sys, "argv", argv)
    load_script().main()
    table = (out / "relative.md").read_text()
    assert "| scratch | 50.00 | 100.0% | 60.00 | 100.0% |" in table
    # withheld: mean(0.45, 0.45) = 0.45 of 0.50 is 90%; trained-style: 0.60 of 0.60 is 100%
    assert "| transfer | 45.00 | 90.0% | 60.00 | 100.0% |" in table
    assert table in capsys.readouterr().out
    merged = json.loads((out / "results.json").read_text())
    assert [m["label"] for m in merged["models"]] == ["scratch", "transfer"]


def test_unknown_reference_is_a_clear_error(tmp_path, monkeypatch, capsys):
    scratch = write(tmp_path, "s", results("x", {"a": 0.5, "b": 0.7, "a@withheld": 0.4, "b@withheld": 0.6}))
    argv = ["suite_table.py", "--out", str(tmp_path / "out"), "--reference", "nope", f"scratch={scratch}"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        load_script().main()
    assert stop.value.code == 2
    assert "--reference 'nope' is none of the models' labels (scratch)" in capsys.readouterr().err
