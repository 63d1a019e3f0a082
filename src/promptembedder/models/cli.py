"""``promptembedder models``: list the known pretrained models and prepare them."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from promptembedder.models.registry import (
    KNOWN_MODELS,
    ModelNotInstalledError,
    UnknownModelError,
    is_installed,
    is_prepared,
    known_model,
    prepare,
)

app = typer.Typer(help="Pretrained models that ship inside PyPI packages.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_models() -> None:
    """Show the known models and whether each is installed and prepared."""
    table = Table(title="Known models")
    table.add_column("name", no_wrap=True)
    for column in ("architecture", "params", "licence", "installed", "prepared"):
        table.add_column(column)
    for name, model in KNOWN_MODELS.items():
        installed = is_installed(model)
        table.add_row(
            name,
            model.architecture,
            model.params,
            model.licence,
            "yes" if installed else "no",
            "yes" if installed and is_prepared(name) else "no",
        )
    console.print(table)


@app.command("prepare")
def prepare_model(
    names: list[str] = typer.Argument(..., help="Short names of models to prepare."),
    install: bool = typer.Option(True, help="Install missing packages with pip (otherwise print the command)."),
    force: bool = typer.Option(False, help="Prepare again even if already prepared."),
) -> None:
    """Install, rejoin, dequantise and cache a model so later loads take seconds."""
    for name in names:
        try:
            known_model(name)
            started = time.perf_counter()
            path = prepare(name, allow_install=install, force=force)
        except (UnknownModelError, ModelNotInstalledError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(2) from None
        console.print(f"{name}: ready at {path} ({time.perf_counter() - started:.1f} s)")
