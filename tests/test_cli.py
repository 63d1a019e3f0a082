"""Every sub-command meets a bad model name and a missing file with one message and exit 2, never a traceback,
and before any model loads (these calls would take minutes otherwise; none loads anything)."""

from __future__ import annotations

import sys

import pytest

from promptembedder.cli import main
from promptembedder.data import sample_dir

from tiny import tiny_embedder

NO_MODEL = "no-such-model"
NO_FILE = "/no/such/path"

BAD_MODEL = {
    "models prepare": ["models", "prepare", NO_MODEL],
    "train": ["train", "demo", "--set", f"model.embedding_model={NO_MODEL}"],
    "train (prompting)": ["train", "demo", "--set", f"model.prompting_model={NO_MODEL}"],
    "demo": ["demo", "--set", f"model.embedding_model={NO_MODEL}"],
    "eval baseline": ["eval", "-m", f"baseline:{NO_MODEL}:mean"],
    "eval instruct": ["eval", "-m", f"instruct:{NO_MODEL}"],
    "eval untrained": ["eval", "-m", f"untrained:smollm2-135m->{NO_MODEL}"],
    "transfer": ["transfer", "--from", "SOURCE", "--embedding-model", NO_MODEL],
    "bench": ["bench", "--set", f"model.embedding_model={NO_MODEL}"],
    "data mine": ["data", "mine", "--data", "SAMPLE", "--model", NO_MODEL],
}
MISSING_FILE = {
    "train config": ["train", f"{NO_FILE}.yaml"],
    "train data": ["train", "demo", "--set", f"data.train_files=[{NO_FILE}]"],
    "train resume checkpoint": ["train", "demo", "--checkpoint", NO_FILE, "--set", "data.train_files=[NOFILE]"],
    "demo data": ["demo", "--data", NO_FILE],
    "eval model folder": ["eval", "-m", NO_FILE],
    "eval data": ["eval", "-m", "minilm", "--data", NO_FILE],
    "transfer source": ["transfer", "--from", NO_FILE, "--embedding-model", "minilm-l6"],
    "prompts export": ["prompts", "export", "--model", NO_FILE, "--out", "OUT"],
    "prompts inspect": ["prompts", "inspect", "--model", NO_FILE],
    "bench eval data": ["bench", "--eval-data", NO_FILE],
    "data info": ["data", "info", NO_FILE],
    "data sample": ["data", "sample", "--from", NO_FILE, "--out", "OUT"],
    "data mine": ["data", "mine", "--data", NO_FILE],
    "export model": ["export", "--model", NO_FILE, "--tasks", "TASKS", "--out", "OUT"],
    "export tasks": ["export", "--model", "SOURCE", "--tasks", NO_FILE, "--out", "OUT"],
    "serve folder": ["serve", NO_FILE],
}


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["promptembedder", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out + captured.err


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A saved (tiny, untrained) PromptEmbedder for transfer to start from."""
    folder = tmp_path_factory.mktemp("source") / "model"
    tiny_embedder().save_pretrained(folder)
    return str(folder)


def tasks_file(folder) -> str:
    path = folder / "tasks.yaml"
    path.write_text("similar: Retrieve a sentence with the same meaning\n")
    return str(path)


def _fill(args: list[str], tmp_path, source: str) -> list[str]:
    return [
        {
            "SOURCE": source,
            "OUT": str(tmp_path / "out"),
            "SAMPLE": str(sample_dir()),
            "TASKS": tasks_file(tmp_path),
        }.get(a, a).replace("NOFILE", NO_FILE + ".jsonl")
        for a in args
    ]


@pytest.mark.parametrize("case", sorted(BAD_MODEL))
def test_a_bad_model_name_is_one_message_and_exit_2(case, monkeypatch, capsys, tmp_path, source):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "home"))
    code, output = run_cli(_fill(BAD_MODEL[case], tmp_path, source), monkeypatch, capsys)
    assert code == 2, output
    assert NO_MODEL in output and "Traceback" not in output
    assert "smollm2-135m" in output  # the known names are listed
    assert not (tmp_path / "home" / "models").exists()  # nothing was installed or prepared


@pytest.mark.parametrize("case", sorted(MISSING_FILE))
def test_a_missing_file_is_one_message_and_exit_2(case, monkeypatch, capsys, tmp_path, source):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "home"))
    code, output = run_cli(_fill(MISSING_FILE[case], tmp_path, source), monkeypatch, capsys)
    assert code == 2, output
    assert NO_FILE in output.replace("\n", "") and "Traceback" not in output
    assert not (tmp_path / "home" / "models").exists()


def test_every_sub_command_is_walked():
    import typer.main

    from promptembedder.cli import app

    group = typer.main.get_command(app)
    commands = set()
    for name, command in group.commands.items():
        subs = getattr(command, "commands", None)
        commands |= {f"{name} {sub}" for sub in subs} if subs else {name}
    walked = {
        " ".join(args[:2]) if " ".join(args[:2]) in commands else args[0]
        for args in [*BAD_MODEL.values(), *MISSING_FILE.values()]
    }
    takes_neither = {"models list", "data install-commands", "data build", "setup"}  # no model or file input
    assert commands - takes_neither <= walked, sorted(commands - takes_neither - walked)


def test_train_help_names_the_packaged_recipes(monkeypatch, capsys):
    """A user finds `train full` / `train minilm` from --help, not only from the README."""
    from promptembedder.training.config import packaged_configs

    code, output = run_cli(["train", "--help"], monkeypatch, capsys)
    assert code == 0
    flat = " ".join(output.replace("│", " ").split())
    assert {"full", "minilm", "full-gpu"} <= set(packaged_configs())
    assert all(name in flat for name in packaged_configs()), flat
