"""bench/transfer/drops.py: each run's largest per-task fall below the task's earlier best."""

import json
import sys

import pytest
from bench_scripts import load_bench_script


def run_folder(tmp_path, name: str, evaluations: dict[int, dict[str, float]]):
    folder = tmp_path / name
    folder.mkdir()
    lines = [{"step": 5, "loss": 1.0, "task": "a"}]  # a training line among the evaluations is skipped
    for step, scores in evaluations.items():
        record = {"step": step, "dev/mean_mrr@10": sum(scores.values()) / len(scores)}
        record.update({f"dev/{t}/mrr@10": v for t, v in scores.items()})
        record.update({f"dev/{t}/recall@1": v for t, v in scores.items()})
        lines.append(record)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def test_drops_finds_the_collapse_and_how_many_tasks_fell_at_once(tmp_path, monkeypatch, capsys):
    drops = load_bench_script("transfer/drops.py")
    steady = run_folder(
        tmp_path, "steady", {0: {"a": 0.5, "b": 0.5}, 30: {"a": 0.6, "b": 0.55}, 60: {"a": 0.5, "b": 0.6}}
    )
    broken = run_folder(
        tmp_path, "broken", {0: {"a": 0.5, "b": 0.5}, 30: {"a": 0.8, "b": 0.7}, 60: {"a": 0.2, "b": 0.3}}
    )
    assert drops.task_curves(broken)[60] == {"a": 0.2, "b": 0.3}
    result = drops.drops(drops.task_curves(broken))
    assert result["largest"] == pytest.approx(0.6) and result["largest_task"] == "a" and result["largest_step"] == 60
    assert result["most_at_once"] == 2 and result["most_at_once_step"] == 60
    monkeypatch.setattr(sys, "argv", ["drops.py", str(steady), str(broken)])
    drops.main()
    out = capsys.readouterr().out
    assert f"| {steady} | 0.10 (a, step 60) | 0 |" in out
    assert f"| {broken} | 0.60 (a, step 60) | 2 (step 60) |" in out


def test_a_folder_without_metrics_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["drops.py", str(tmp_path)])
    with pytest.raises(SystemExit, match="has no metrics.jsonl"):
        load_bench_script("transfer/drops.py").main()
