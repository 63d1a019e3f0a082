"""The transfer experiment's ``--merge``: a later target joins an earlier run's table only if it measured alike."""

import json
import sys

import pytest
from bench_scripts import load_bench_script


def load_run_module():
    return load_bench_script("transfer/run.py")


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


def test_steps_to_95_of_scratchs_gain_stay_defined_when_the_start_is_already_near_the_end(tmp_path):
    """An untrained start within 5% of scratch's end puts every arm at 95% of that end at step 0; the gain-based
    count still tells the arms apart, and the table shows both with their speed-ups."""
    run = load_run_module()
    arms = {
        "scratch": {"curve": {"0": 0.80, "10": 0.81, "20": 0.83, "30": 0.84}},
        "transfer-vocab": {"curve": {"0": 0.80, "10": 0.84, "20": 0.84, "30": 0.85}},
    }
    run.score_steps(arms)
    assert arms["scratch"]["steps_to_95"] == arms["transfer-vocab"]["steps_to_95"] == 0
    assert arms["scratch"]["steps_to_95_gain"] == 30 and arms["transfer-vocab"]["steps_to_95_gain"] == 10
    for arm in arms.values():
        arm.update(trainable_parameters=10, seconds_per_step=1.0, output_dir="x")
    results = new_results(targets={"minilm": arms}, steps=30)
    run.write_report(results, tmp_path)
    row = [line for line in (tmp_path / "results.md").read_text().splitlines() if "transfer-vocab" in line][0]
    assert "| 10 | 3.0x |" in row and "undefined (both at step 0)" in row
    falling = {"scratch": {"curve": {"0": 0.8, "30": 0.7}}}
    run.score_steps(falling)
    assert falling["scratch"]["steps_to_95_gain"] is None  # scratch gained nothing: no gain to reach


def test_an_arm_shorter_than_the_others_reports_its_last_evaluation(tmp_path):
    """A transfer arm trained for fewer steps (or stopped at a plateau) is scored at its own last evaluation."""
    run = load_run_module()
    arms = {
        "scratch": {"curve": {"0": 0.2, "30": 0.5, "60": 0.6}},
        "transfer-vocab+short": {"curve": {"0": 0.3, "15": 0.58, "30": 0.61}},
    }
    run.score_steps(arms)
    assert arms["transfer-vocab+short"]["steps_to_95"] == 15  # 0.95 x scratch's last score, 0.6
    for arm in arms.values():
        arm.update(trainable_parameters=10, seconds_per_step=1.0, output_dir="x")
    run.write_report(new_results(targets={"smollm2": arms}, steps=60), tmp_path)
    row = [line for line in (tmp_path / "results.md").read_text().splitlines() if "short" in line][0]
    assert "| 0.300 | 0.610 | 15 |" in row


def test_variants_parse_into_named_setting_lists_and_malformed_ones_exit_with_the_form():
    run = load_run_module()
    assert run.parse_variants(["deep:model.deep_prompt=true", "w3:optim.alignment_lr=3e-3; steps=10"]) == {
        "deep": ["model.deep_prompt=true"],
        "w3": ["optim.alignment_lr=3e-3", "steps=10"],
    }
    for bad in ("deep", "deep:", ":a=1", "de ep:a=1", "deep:a"):
        with pytest.raises(SystemExit, match="NAME:KEY=VALUE"):
            run.parse_variants([bad])
    with pytest.raises(SystemExit, match="twice"):
        run.parse_variants(["a:x=1", "a:y=2"])


def test_a_scratch_only_run_trains_no_source_and_plans_no_transfer_arm(tmp_path, monkeypatch):
    """``--arm scratch`` without ``--source`` trains just the scratch arm (it never reads a source), so it can
    start before the source it will be compared with has finished training."""
    run = load_run_module()
    trained = []

    def fake_arm(overrides, label, step0=True, reuse=False):
        trained.append((label, overrides))
        return {"output_dir": str(tmp_path / label)}

    monkeypatch.setattr(run, "run_arm", fake_arm)
    argv = ["run.py", "--targets", "tiny", "--arm", "scratch", "--runs", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "out")])
    run.main()
    assert [label for label, _ in trained] == ["scratch"]
    assert not any(o.startswith("transfer.source=") for o in trained[0][1])
