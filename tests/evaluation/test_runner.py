"""Several models side by side: results JSON, markdown table, bar chart, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from promptembedder.evaluation import EmbeddingCache, EvalOptions, evaluate_task, run_eval
from promptembedder.evaluation.cli import eval_command
from promptembedder.evaluation.report import markdown_table, summarise
from promptembedder.evaluation.runner import UnknownTaskError


def _fake_loader(fake_encoder):
    return lambda spec: fake_encoder(name=spec, noise=0.01 if spec == "good" else 2.0)


def test_side_by_side_results_and_report(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    out = tmp_path / "res" / "results.json"
    results = run_eval(
        ["good", "noisy"],
        out=out,
        data_dir=eval_dir,
        cache=EmbeddingCache(tmp_path / "c"),
        options=EvalOptions(limit=6),
        load=_fake_loader(fake_encoder),
    )
    saved = json.loads(out.read_text())
    assert saved["summary"] == results["summary"]
    assert [m["label"] for m in saved["models"]] == ["good", "noisy"]
    assert len(saved["tasks"]) == 6 and all(len(m["tasks"]) == 6 for m in saved["models"])
    assert saved["wall_time_s"] > 0
    summary = summarise(saved)
    assert summary["good"]["avg_types"] > summary["noisy"]["avg_types"]
    assert set(summary["good"]) == {
        "retrieval",
        "reranking",
        "sts",
        "classification",
        "clustering",
        "pair_classification",
        "avg_types",
        "avg_tasks",
    }

    md = out.with_suffix(".md").read_text()
    assert "| task | type | metric | good | noisy |" in md
    assert "**retrieval avg**" in md and "**average over types**" in md
    assert "tiny-sts (pairs 6/7)" in md and "tiny-retrieval (" not in md  # only what was cut is listed
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_task_selection(eval_dir: Path, tmp_path: Path, fake_encoder) -> None:
    results = run_eval(
        ["good"],
        out=tmp_path / "r.json",
        data_dir=eval_dir,
        task_names=["tiny-sts,tiny-pairs"],
        cache=EmbeddingCache(enabled=False),
        load=_fake_loader(fake_encoder),
    )
    assert sorted(results["models"][0]["tasks"]) == ["tiny-pairs", "tiny-sts"]
    assert "tiny-sts" in markdown_table(results)
    with pytest.raises(UnknownTaskError, match="available: tiny-classification"):
        run_eval(
            ["good"], out=tmp_path / "r.json", data_dir=eval_dir, task_names=["nope"], load=_fake_loader(fake_encoder)
        )


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # two commands, so "eval" stays a sub-command as in the real CLI
    return app


def test_cli_rejects_an_unknown_spec(tmp_path: Path) -> None:
    res = CliRunner().invoke(_cli(), ["eval", "--model", "gpt-9000", "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 2
    assert "'gpt-9000'" in res.output and "baseline:NAME:mean" in res.output and "untrained:" in res.output
    assert not (tmp_path / "r.json").exists()


def test_cli_unknown_task_is_a_clean_error(eval_dir: Path, tmp_path: Path) -> None:
    args = ["eval", "-m", "minilm", "--data", str(eval_dir), "--tasks", "nope", "--out", str(tmp_path / "r.json")]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 2 and "unknown task(s) nope" in res.output


def test_registered_in_the_main_cli() -> None:
    from promptembedder.cli import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert "eval" in names


def test_a_model_that_fails_gets_a_row_that_says_why_and_the_others_still_run(
    eval_dir: Path, tmp_path: Path, fake_encoder, capsys
) -> None:
    def load(spec: str):
        if spec == "broken":
            raise ModuleNotFoundError("No module named 'some_model_package'")
        return fake_encoder(name=spec, noise=0.01)

    out = tmp_path / "results.json"
    results = run_eval(
        ["good", "broken", "also-good"],
        out=out,
        data_dir=eval_dir,
        cache=EmbeddingCache(tmp_path / "c"),
        options=EvalOptions(limit=6),
        load=load,
        keep_going=True,
        progress=True,
    )
    broken = results["models"][1]
    assert broken["error"] == "ModuleNotFoundError: No module named 'some_model_package'" and not broken["tasks"]
    assert all(len(m["tasks"]) == 6 for m in (results["models"][0], results["models"][2]))
    md = out.with_suffix(".md").read_text()
    assert "**failed**: ModuleNotFoundError: No module named 'some_model_package'" in md
    assert "| failed |" in md
    bar = capsys.readouterr().err  # the progress bar names the model, its place, the task and what is left
    assert "model 2/3: broken" in bar and "model 3/3: also-good" in bar and "18/18" in bar

    with pytest.raises(ModuleNotFoundError):  # without keep_going the error propagates
        run_eval(["broken"], out=tmp_path / "r2.json", data_dir=eval_dir, load=load, progress=False)


def test_an_encoder_that_ignores_instructions_embeds_a_withheld_copy_from_the_cache(
    eval_dir: Path, tmp_path: Path, fake_encoder
) -> None:
    """The withheld-instruction copy of a task costs nothing for a model that takes no instruction."""
    import dataclasses

    from promptembedder.evaluation.runner import load_tasks

    task = load_tasks(eval_dir)[0]
    withheld = dataclasses.replace(task, name=task.name + "@withheld", instruction="Some other wording entirely")
    cache = EmbeddingCache(tmp_path / "c")
    deaf = fake_encoder(name="deaf", noise=0.01)
    deaf.ignores_instruction = True
    first = evaluate_task(deaf, task, cache=cache, options=EvalOptions(limit=6), fingerprint="deaf")
    misses = cache.misses
    second = evaluate_task(deaf, withheld, cache=cache, options=EvalOptions(limit=6), fingerprint="deaf")
    assert cache.misses == misses and second.main_score == first.main_score
    listening = fake_encoder(name="listening", noise=0.01)
    evaluate_task(listening, task, cache=cache, options=EvalOptions(limit=6), fingerprint="listening")
    misses = cache.misses
    evaluate_task(listening, withheld, cache=cache, options=EvalOptions(limit=6), fingerprint="listening")
    assert cache.misses > misses  # an encoder that reads the instruction embeds its queries again
