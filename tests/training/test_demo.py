import json

from typer.testing import CliRunner

from promptembedder.cli import app

from tiny import save_tiny_pair


def test_demo_trains_then_compares_against_untrained_and_baselines(tmp_path):
    prompting, embedding = save_tiny_pair(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--steps",
            "3",
            "--out",
            str(tmp_path / "demo"),
            "--limit",
            "12",
            "--set",
            f"model.prompting_model={prompting}",
            "--set",
            f"model.embedding_model={embedding}",
            "--set",
            "model.max_length=32",
            "--set",
            "batch_size=4",
            "--set",
            "data.dev_per_task=4",
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "demo" / "eval.json").read_text())
    assert len(results["models"]) == 6
    assert (tmp_path / "demo" / "eval.md").is_file() and (tmp_path / "demo" / "loss.png").is_file()
    assert "minilm" in result.output
