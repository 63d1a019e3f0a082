"""bench/transfer/timing.py: seconds per step of a recorded arm, trained again with nothing but its steps."""

import json
import sys

import pytest
from bench_scripts import load_bench_script


def test_an_arm_is_timed_from_its_recorded_config_without_evaluations_or_checkpoints(setup, tmp_path, monkeypatch):
    timing = load_bench_script("transfer/timing.py")
    recorded = json.loads((setup["run"] / "config.json").read_text())
    config = timing.timed_config({**recorded, "eval_every": 5, "patience": 3}, 4, tmp_path / "t")
    assert (config["steps"], config["eval_every"], config["patience"], config["log_every"]) == (4, 0, 0, 1)
    assert config["checkpoint_every"] == 5 and config["model"] == recorded["model"]
    assert recorded["output_dir"] != str(tmp_path / "t")  # the recorded run is left alone

    before = (setup["run"] / "metrics.jsonl").read_text()
    out = tmp_path / "timing.json"
    monkeypatch.setattr(sys, "argv", ["timing.py", str(setup["run"]), "--steps", "3", "--out", str(out)])
    timing.main()
    result = json.loads(out.read_text())
    assert result["steps"] == 3 and len(result["step_seconds"]) == 3
    assert result["seconds_per_step"] == pytest.approx(sum(result["step_seconds"]) / 3)
    assert (setup["run"] / "metrics.jsonl").read_text() == before  # trained elsewhere: the run is untouched


def test_a_folder_without_a_recorded_config_or_no_steps_is_one_clear_error(tmp_path, monkeypatch, capsys):
    timing = load_bench_script("transfer/timing.py")
    monkeypatch.setattr(sys, "argv", ["timing.py", str(tmp_path), "--out", str(tmp_path / "t.json")])
    with pytest.raises(SystemExit) as stop:
        timing.main()
    assert stop.value.code == 2 and "config.json; give the run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        timing.timed_config({}, 0, tmp_path)
    assert stop.value.code == 2 and "time at least 1 step" in capsys.readouterr().err
