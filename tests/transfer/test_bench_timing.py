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

    out = tmp_path / "timing.json"
    monkeypatch.setattr(sys, "argv", ["timing.py", str(setup["run"]), "--steps", "3", "--out", str(out)])
    timing.main()
    result = json.loads(out.read_text())
    assert result["steps"] == 3 and len(result["step_seconds"]) == 3
    assert result["seconds_per_step"] == pytest.approx(sum(result["step_seconds"]) / 3)
    assert not (setup["run"] / "timing").exists()


def test_a_folder_without_a_recorded_config_is_one_clear_error(tmp_path, monkeypatch):
    timing = load_bench_script("transfer/timing.py")
    monkeypatch.setattr(sys, "argv", ["timing.py", str(tmp_path), "--out", str(tmp_path / "t.json")])
    with pytest.raises(SystemExit, match="no .*config.json; give the run folder"):
        timing.main()
