"""bench/transfer/patience.py: early stopping replayed on recorded dev curves with the Trainer's own rule."""

import json
import sys

import pytest
from bench_scripts import load_bench_script

# A dip after the first evaluation, then a climb: the shape of the qwen2.5-coder-0.5b transfer curves.
DIPPING = {0: 0.3, 15: 0.6, 30: 0.5, 45: 0.55, 60: 0.58, 75: 0.7, 90: 0.72}
RISING = {0: 0.3, 15: 0.4, 30: 0.5, 45: 0.6, 60: 0.65, 75: 0.66, 90: 0.64}


def test_replay_stops_where_the_trainer_would_and_keeps_the_best_so_far():
    patience = load_bench_script("transfer/patience.py")
    assert patience.replay(DIPPING, 0) == (90, 0.72)  # all steps: the best of every evaluation, the last included
    assert patience.replay(DIPPING, 3) == (60, 0.6)  # 30, 45, 60 fail to beat 15's 0.6
    assert patience.replay(DIPPING, 4) == (90, 0.72)  # 75 beats it before a fourth miss
    assert patience.replay(RISING, 1) == (90, 0.66)  # the last evaluation (0.64) follows the loop, never stops it
    assert patience.replay({0: 0.9, 15: 0.4, 30: 0.5}, 1) == (30, 0.5)  # step 0 is not one of the loop's


def test_main_writes_the_table_json_and_plot(tmp_path, monkeypatch, capsys):
    patience = load_bench_script("transfer/patience.py")
    files = {}
    for name, curve in {"dip": DIPPING, "rise": RISING}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps({"curve": {str(k): v for k, v in curve.items()}}))
    out = tmp_path / "out"
    argv = ["patience.py", "--patience", "3", "4", "--out", str(out), *(f"{k}={v}" for k, v in files.items())]
    monkeypatch.setattr(sys, "argv", argv)
    patience.main()
    table = capsys.readouterr().out
    assert "| 0 (all steps) | 90 / 0.720 | 90 / 0.660 | 90 | 0.690 | +0.000 |" in table
    assert "| 3 | 60 / 0.600 | 90 / 0.660 | 75 | 0.630 | -0.060 |" in table
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["patience"] for r in rows] == [0, 3, 4]
    assert (out / "results.md").read_text().count("\n|") == 5 and (out / "results.png").stat().st_size > 0


def test_a_missing_file_is_named(tmp_path, monkeypatch):
    patience = load_bench_script("transfer/patience.py")
    monkeypatch.setattr(sys, "argv", ["patience.py", "--out", str(tmp_path), f"a={tmp_path / 'none.json'}"])
    with pytest.raises(SystemExit, match="none.json"):
        patience.main()
