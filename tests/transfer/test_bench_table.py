"""bench/transfer/table.py: the bench's table from arms trained in separate runs."""

import json
import sys

import pytest
from bench_scripts import load_bench_script


def arm(tmp_path, name: str, curve: dict[str, float], target: str | None = "smollm2-135m"):
    folder = tmp_path / name
    folder.mkdir()
    record = {"label": name, "curve": curve, "trainable_parameters": 10, "seconds_per_step": 1.5}
    (folder / "arm.json").write_text(json.dumps(record))
    if target is not None:  # what the Trainer writes beside it
        (folder / "config.json").write_text(json.dumps({"model": {"embedding_model": target}}))
    return folder


def test_table_counts_steps_against_the_scratch_arm(tmp_path, monkeypatch, capsys):
    scratch = arm(tmp_path, "s", {"0": 0.2, "30": 0.5, "60": 0.6, "90": 0.7})
    moved = arm(tmp_path, "t", {"0": 0.3, "30": 0.67, "60": 0.7})
    out = tmp_path / "out"
    argv = ["table.py", "--out", str(out), "--eval-every", "30", f"scratch={scratch}", f"transfer={moved}"]
    monkeypatch.setattr(sys, "argv", argv)
    load_bench_script("transfer/table.py").main()
    results = json.loads((out / "results.json").read_text())
    arms = results["targets"]["smollm2-135m"]
    assert arms["scratch"]["steps_to_95"] == 90  # 0.95 * 0.7 = 0.665
    assert arms["transfer"]["steps_to_95"] == 30
    assert "| smollm2-135m | transfer | 0.300 | 0.700 | 30 | 3.0x |" in capsys.readouterr().out
    assert (out / "results.png").is_file()


def test_table_needs_a_scratch_arm_and_existing_folders(tmp_path, monkeypatch, capsys):
    moved = arm(tmp_path, "t", {"0": 0.3})
    table = load_bench_script("transfer/table.py")
    for specs, message in (
        ([f"transfer={moved}"], "one arm must be labelled scratch"),
        ([f"scratch={tmp_path / 'none'}"], "no " + str(tmp_path / "none" / "arm.json")),
    ):
        monkeypatch.setattr(sys, "argv", ["table.py", "--out", str(tmp_path / "o"), "--eval-every", "30", *specs])
        with pytest.raises(SystemExit) as stop:
            table.main()
        assert stop.value.code == 2
        assert message in capsys.readouterr().err


def test_an_arm_of_several_seeds_is_their_mean_curve_on_the_steps_they_share(tmp_path, monkeypatch, capsys):
    seed0 = arm(tmp_path, "s0", {"0": 0.2, "30": 0.6, "60": 0.6})
    seed1 = arm(tmp_path, "s1", {"0": 0.2, "30": 0.4, "60": 0.8})
    moved0 = arm(tmp_path, "t0", {"0": 0.3, "15": 0.5, "30": 0.7, "60": 0.7})  # a finer grid: 15 is dropped
    moved1 = arm(tmp_path, "t1", {"0": 0.3, "30": 0.64, "60": 0.7})
    out = tmp_path / "out"
    specs = [f"scratch={seed0},{seed1}", f"transfer={moved0},{moved1}"]
    monkeypatch.setattr(sys, "argv", ["table.py", "--out", str(out), "--eval-every", "30", *specs])
    load_bench_script("transfer/table.py").main()
    arms = json.loads((out / "results.json").read_text())["targets"]["smollm2-135m"]
    assert arms["scratch"]["curve"] == pytest.approx({"0": 0.2, "30": 0.5, "60": 0.7})
    assert arms["transfer"]["curve"] == pytest.approx({"0": 0.3, "30": 0.67, "60": 0.7})
    assert arms["scratch"]["steps_to_95"] == 60 and arms["transfer"]["steps_to_95"] == 30  # 0.95 * 0.7 = 0.665
    assert arms["transfer"]["seconds_per_step"] == 1.5 and len(arms["transfer"]["runs"]) == 2
    assert "| smollm2-135m | transfer | 0.300 | 0.700 | 30 | 2.0x |" in capsys.readouterr().out


def test_seeds_on_disjoint_grids_are_one_clear_error(tmp_path, monkeypatch, capsys):
    a = arm(tmp_path, "a", {"15": 0.5})
    b = arm(tmp_path, "b", {"30": 0.5})
    monkeypatch.setattr(
        sys, "argv", ["table.py", "--out", str(tmp_path / "o"), "--eval-every", "30", f"scratch={a},{b}"]
    )
    with pytest.raises(SystemExit) as stop:
        load_bench_script("transfer/table.py").main()
    assert stop.value.code == 2
    assert "share no evaluated step" in capsys.readouterr().err


def test_the_table_gives_minutes_to_95_percent_and_the_wall_time_ratio(tmp_path, monkeypatch, capsys):
    """Issue 15's second ratio: steps to 95% times each arm's own seconds a step, scratch's over the arm's."""
    scratch = arm(tmp_path, "s", {"0": 0.2, "30": 0.5, "60": 0.6, "90": 0.7})  # 90 steps x 4 s = 6.0 min
    moved = arm(tmp_path, "t", {"0": 0.3, "30": 0.67, "60": 0.7})  # 30 steps x 2 s = 1.0 min
    never = arm(tmp_path, "n", {"0": 0.3, "30": 0.4})
    for folder, seconds in ((scratch, 4.0), (moved, 2.0)):
        record = json.loads((folder / "arm.json").read_text())
        (folder / "arm.json").write_text(json.dumps({**record, "seconds_per_step": seconds}))
    argv = ["table.py", "--out", str(tmp_path / "out"), "--eval-every", "30"]
    monkeypatch.setattr(sys, "argv", [*argv, f"scratch={scratch}", f"transfer={moved}", f"stuck={never}"])
    load_bench_script("transfer/table.py").main()
    rows = {line.split(" | ")[1]: line for line in capsys.readouterr().out.splitlines() if "smollm2-135m" in line}
    assert "| 90 | - | 6.0 | - |" in rows["scratch"]
    assert "| 30 | 3.0x | 1.0 | 6.0x |" in rows["transfer"]
    assert "| not reached | n/a (95% not reached) | not reached | n/a (95% not reached) |" in rows["stuck"]


def test_timed_seconds_replace_the_runs_own_and_a_bad_timing_is_one_clear_error(tmp_path, monkeypatch, capsys):
    scratch = arm(tmp_path, "s", {"0": 0.2, "30": 0.5, "60": 0.6, "90": 0.7})
    moved = arm(tmp_path, "t", {"0": 0.3, "30": 0.67, "60": 0.7})
    timed = tmp_path / "timed.json"
    timed.write_text(json.dumps({"seconds_per_step": 0.5, "steps": 30}))
    out = tmp_path / "out"
    argv = ["table.py", "--out", str(out), "--eval-every", "30", f"scratch={scratch}", f"transfer={moved}"]
    monkeypatch.setattr(sys, "argv", [*argv, "--timing", f"transfer={timed}"])
    load_bench_script("transfer/table.py").main()
    arms = json.loads((out / "results.json").read_text())["targets"]["smollm2-135m"]
    assert arms["transfer"]["seconds_per_step"] == 0.5 and arms["transfer"]["recorded_seconds_per_step"] == 1.5
    assert "| 30 | 3.0x | 0.2 | 9.0x |" in capsys.readouterr().out  # 90 x 1.5 s against 30 x 0.5 s
    for spec, message in ((f"nope={timed}", "no arm called 'nope'"), ("transfer=missing.json", "timing.py first")):
        monkeypatch.setattr(sys, "argv", [*argv, "--timing", spec])
        with pytest.raises(SystemExit) as stop:
            load_bench_script("transfer/table.py").main()
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_the_target_comes_from_the_runs_configs_or_is_one_clear_error(tmp_path, monkeypatch, capsys):
    """The row is named after the Embedding LLM the runs trained for; arms of different targets, or runs without
    a config.json and no --target, stop with a message naming the fix."""
    table = load_bench_script("transfer/table.py")
    scratch = arm(tmp_path, "s", {"0": 0.6, "30": 0.7}, target="qwen2.5-coder-0.5b")
    moved = arm(tmp_path, "t", {"0": 0.65, "15": 0.7}, target="qwen2.5-coder-0.5b")
    other = arm(tmp_path, "o", {"0": 0.65, "15": 0.7}, target="minilm-l6")
    bare = arm(tmp_path, "b", {"0": 0.65, "15": 0.7}, target=None)
    out = tmp_path / "out"
    base = ["table.py", "--out", str(out), "--eval-every", "15", f"scratch={scratch}"]
    monkeypatch.setattr(sys, "argv", [*base, f"transfer={moved}"])
    table.main()
    assert list(json.loads((out / "results.json").read_text())["targets"]) == ["qwen2.5-coder-0.5b"]
    capsys.readouterr()
    for extra, message in ([f"transfer={other}"], "different Embedding LLMs"), ([f"transfer={bare}"], "--target"):
        monkeypatch.setattr(sys, "argv", [*base, *extra])
        with pytest.raises(SystemExit) as stop:
            table.main()
        assert stop.value.code == 2 and message in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*base, f"transfer={bare}", "--target", "qwen2.5-coder-0.5b"])
    table.main()
    assert list(json.loads((out / "results.json").read_text())["targets"]) == ["qwen2.5-coder-0.5b"]
