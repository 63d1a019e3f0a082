"""The transfer experiment's ``--merge``: a later target joins an earlier run's table only if it measured alike."""

import importlib.util
import json
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "transfer" / "run.py"


def load_run_module():
    spec = importlib.util.spec_from_file_location("bench_transfer_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_results(**changes) -> dict:
    base = {
        "command": "run --targets b",
        "source": "s",
        "source_embedding": "g",
        "targets": {},
        "steps": 40,
        "eval_every": 10,
    }
    return {**base, **changes}


def test_merge_keeps_earlier_targets_and_both_commands(tmp_path):
    run = load_run_module()
    earlier = new_results(command="run --targets a", targets={"a": {"curve": {"0": 0.5}}}, wall_seconds=12.0)
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    merged = run.merge_previous(new_results(), tmp_path / "results.json")
    assert merged["targets"] == {"a": {"curve": {"0": 0.5}}}
    assert merged["commands"] == ["run --targets a", "run --targets b"]
    assert merged["wall_seconds_by_command"] == [12.0]
    assert "command" not in merged and "wall_seconds" not in merged


def test_merge_without_an_earlier_file_is_a_fresh_run(tmp_path):
    run = load_run_module()
    assert run.merge_previous(new_results(), tmp_path / "results.json") == new_results()


def test_merge_refuses_a_run_that_measured_differently(tmp_path):
    run = load_run_module()
    (tmp_path / "results.json").write_text(json.dumps(new_results(steps=60, wall_seconds=1.0)))
    with pytest.raises(SystemExit, match="steps=60"):
        run.merge_previous(new_results(), tmp_path / "results.json")
