"""``promptembedder transfer`` and ``promptembedder prompts export`` end to end on tiny models."""

import json

from typer.testing import CliRunner

from promptembedder import PromptEmbedder
from promptembedder.cli import app
from promptembedder.data import sample_dir
from promptembedder.transfer import SoftPrompts

from tiny import TINY_TASKS


def test_transfer_command_trains_w_and_the_model_is_evaluable(setup, tmp_path):
    out = tmp_path / "run"
    args = ["transfer", "--from", str(setup["run"]), "--embedding-model", str(setup["target"]), "--init", "compose"]
    settings = [f"data.train_files=[{setup['files'][0]}, {setup['files'][1]}]", "model.max_length=32"]
    settings += ["batch_size=8", "steps=2", "log_every=1", "data.dev_per_task=8", "eval_every=0", f"output_dir={out}"]
    result = CliRunner().invoke(app, args + [arg for s in settings for arg in ("--set", s)])
    assert result.exit_code == 0, result.output
    assert f"model saved to {out / 'model'}" in result.output
    assert json.loads((out / "config.json").read_text())["transfer"] == {
        "source": str(setup["run"] / "model"),
        "init": "compose",
        "prompting": "frozen",
    }
    assert len([line for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]) == 2
    model = PromptEmbedder.from_pretrained(out / "model", device="cpu")
    assert model.embedding.hidden_size == setup["wide"]

    report = tmp_path / "eval" / "results.json"
    args = ["eval", "--model", str(out / "model"), "--data", str(sample_dir()), "--tasks", "lee_news_sts"]
    result = CliRunner().invoke(app, args + ["--limit", "6", "--no-cache", "--out", str(report)])
    assert result.exit_code == 0, result.output
    assert report.is_file()


def test_the_packaged_transfer_recipe_runs_as_the_readme_shows(setup, tmp_path):
    """``promptembedder transfer --from RUN --embedding-model NAME transfer``: the measured recipe (deep prompt
    maps on their own rate, dev every eval_every steps with patience) on tiny models."""
    out = tmp_path / "run"
    args = ["transfer", "--from", str(setup["run"]), "--embedding-model", str(setup["target"]), "transfer"]
    settings = [f"data.train_files=[{setup['files'][0]}, {setup['files'][1]}]", "model.max_length=32"]
    settings += ["model.text_template=''", "model.pooling=mean", "steps=4", "eval_every=2", "data.dev_per_task=8"]
    settings += [f"output_dir={out}"]
    result = CliRunner().invoke(app, args + [arg for s in settings for arg in ("--set", s)])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["model"]["deep_prompt"] and recorded["optim"]["warmup_steps"] == 10
    assert recorded["optim"]["deep_lr"] == 5e-4 and recorded["patience"] == 5
    assert sum('"dev/mean_mrr@10"' in line for line in (out / "metrics.jsonl").read_text().splitlines()) >= 1
    assert PromptEmbedder.from_pretrained(out / "model", device="cpu").alignment.deep.abs().sum() > 0


def test_transfer_command_can_fine_tune_the_prompting_llm_too(setup, tmp_path):
    out = tmp_path / "run"
    args = [
        "transfer",
        "--from",
        str(setup["run"]),
        "--embedding-model",
        str(setup["target"]),
        "--prompting",
        "trainable",
    ]
    settings = [f"data.train_files=[{setup['files'][0]}, {setup['files'][1]}]", "model.max_length=32"]
    settings += ["batch_size=8", "steps=1", "data.dev_per_task=8", "eval_every=0", "patience=0", f"output_dir={out}"]
    result = CliRunner().invoke(app, args + [arg for s in settings for arg in ("--set", s)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["transfer"]["prompting"] == "trainable"
    result = CliRunner().invoke(app, args[:-1] + ["warm"] + [arg for s in settings for arg in ("--set", s)])
    assert result.exit_code == 2 and "trainable" in result.output, result.output


def test_transfer_command_stops_itself_at_a_plateau_and_says_when(setup, tmp_path):
    out = tmp_path / "run"
    args = ["transfer", "--from", str(setup["run"]), "--embedding-model", str(setup["target"]), "--init", "mixture"]
    settings = [f"data.train_files=[{setup['files'][0]}, {setup['files'][1]}]", "model.max_length=32"]
    settings += ["batch_size=8", "steps=12", "data.dev_per_task=8", "eval_every=0", f"output_dir={out}"]
    settings += ["optim.alignment_lr=1e-12"]  # W hardly moves: the dev ranking (so MRR) is flat from the start
    result = CliRunner().invoke(app, args + [arg for s in settings for arg in ("--set", s)])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["patience"] == 5 and recorded["eval_every"] == 1  # the defaults a transfer gets
    assert "6 of 12 steps in" in result.output and "stopped at a plateau (patience 5)" in result.output
    assert json.loads((out / "summary.json").read_text())["stopped"] == "plateau"
    assert PromptEmbedder.from_pretrained(out / "model", device="cpu").alignment.has_table
    result = CliRunner().invoke(app, args + ["--patience", "0"] + [a for s in settings for a in ("--set", s)])
    assert result.exit_code == 0 and "12 of 12 steps" in result.output, result.output


def test_transfer_command_errors_are_clean(setup, tmp_path):
    empty = tmp_path / "empty-run"
    (empty / "checkpoints").mkdir(parents=True)
    args = ["transfer", "--from", str(empty), "--embedding-model", str(setup["target"])]
    result = CliRunner().invoke(app, args + ["--set", f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code == 2
    assert "error:" in result.output and "without a finished model" in result.output


def test_prompts_export_command(setup, tmp_path):
    instruction = TINY_TASKS["animals"][0]
    args = ["prompts", "export", "--model", str(setup["run"]), "--out", str(tmp_path / "p"), "-i", instruction]
    result = CliRunner().invoke(app, args + ["--data", setup["files"][1]])
    assert result.exit_code == 0, result.output
    assert SoftPrompts.load(tmp_path / "p").instructions == [instruction, TINY_TASKS["music"][0]]
    result = CliRunner().invoke(app, ["prompts", "export", "--model", str(tmp_path), "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and "holds no trained PromptEmbedder" in result.output


def test_prompts_inspect_reports_entropy_nearest_tokens_and_spread(setup, tmp_path):
    instructions = ["retrieve the definition of the word", "classify the topic of the news"]
    args = ["prompts", "inspect", "--model", str(setup["run"]), "--top", "2", "--json", str(tmp_path / "p.json")]
    result = CliRunner().invoke(app, args + [a for i in instructions for a in ("-i", i)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "p.json").read_text())
    k = len(report["steps"]) // 2
    assert [row["instruction"] for row in report["steps"]] == [instructions[0]] * k + [instructions[1]] * k
    assert all(len(row["nearest"]) == 2 and row["entropy"] > 0 for row in report["steps"])
    assert report["summary"]["distinct"] > 0 and "distinct" in result.output
    result = CliRunner().invoke(app, ["prompts", "inspect", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "holds no trained PromptEmbedder" in result.output


def test_nearest_tokens_finds_a_vocabulary_row_itself():
    import torch

    from promptembedder.prompting import nearest_tokens

    vocab = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    cos, ids = nearest_tokens(vocab[[3, 7]][None], vocab, k=2)
    assert ids.shape == (1, 2, 2) and ids[0, :, 0].tolist() == [3, 7]
    torch.testing.assert_close(cos[0, :, 0], torch.ones(2))
