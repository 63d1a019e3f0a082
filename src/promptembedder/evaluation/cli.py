"""``promptembedder eval``: several models over the held-out suite, one side-by-side table."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from tqdm.auto import tqdm

from promptembedder.evaluation.baselines import SPEC_FORMS


def eval_command(
    model: list[str] = typer.Option(..., "--model", "-m", help="Model spec, repeatable: " + "; ".join(SPEC_FORMS)),
    tasks: list[str] = typer.Option(
        None, "--tasks", "-t", help="Task names (file stems), repeatable or comma-separated; default all."
    ),
    out: Path = typer.Option(
        Path("results.json"), "--out", "-o", help="Results JSON; the .md table and .png chart go beside it."
    ),
    data: Path = typer.Option(
        None, "--data", help="Built data folder (default: the full build if present, else the in-repo sample)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    max_corpus: int = typer.Option(
        None, "--max-corpus", min=1, help="Retrieval: keep at most this many documents (every judged one stays)."
    ),
    limit: int = typer.Option(
        None, "--limit", min=1, help="At most this many queries / samples / pairs / test items per task."
    ),
    max_chars: int = typer.Option(
        None, "--max-chars", min=1, help="Cut texts to about this many characters first (a cost cap on a CPU)."
    ),
    n_experiments: int = typer.Option(
        10, "--n-experiments", min=1, help="Classification: classifier draws averaged (MTEB: 10)."
    ),
    samples_per_label: int = typer.Option(
        8, "--samples-per-label", min=1, help="Classification: training examples per label (MTEB: 8)."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of subsampling, classifier draws and the first k-means run."),
    device: str = typer.Option(
        None, "--device", help="torch device for the models (default: cpu, or cuda when present)."
    ),
    mteb_tasks: list[str] = typer.Option(
        None,
        "--mteb",
        help="Run mteb's own task classes by name instead of the held-out suite (repeatable or comma-separated); "
        "their data must be in the local Hugging Face cache when offline.",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    instructions: str = typer.Option(
        "both",
        "--instructions",
        help="Instruction sets: both (each task under its trained-style and, where it has one, its withheld "
        "instruction, reported as NAME@withheld and averaged apart), trained, or withheld.",
    ),
    keep_going: bool = typer.Option(
        True, "--keep-going/--fail-fast", help="A model that fails gets a row saying why; the others still run."
    ),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", help="Embedding cache folder (default: $PROMPTEMBEDDER_HOME/embeddings)."
    ),
) -> None:
    """Evaluate models on the held-out suite with MTEB's metrics and print the table side by side."""
    from promptembedder.data import DataFormatError
    from promptembedder.evaluation.baselines import ModelSpecError, load_encoder, parse_spec
    from promptembedder.evaluation.cache import EmbeddingCache
    from promptembedder.evaluation.runner import UnknownTaskError, run_eval
    from promptembedder.evaluation.tasks import EvalOptions

    for spec in model:
        try:
            parse_spec(spec)
        except ModelSpecError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    if instructions not in ("both", "trained", "withheld"):
        typer.echo(f"error: --instructions {instructions!r}: choose both, trained or withheld", err=True)
        raise typer.Exit(2)
    if data is not None and not data.is_dir():
        typer.echo(
            f"error: --data {data} is not a folder; give a built data folder (promptembedder data build)", err=True
        )
        raise typer.Exit(2)
    if mteb_tasks:
        import importlib.util

        if importlib.util.find_spec("mteb") is None:
            typer.echo("error: --mteb needs the mteb extra: pip install 'promptembedder[mteb]'", err=True)
            raise typer.Exit(2)
        names = [n.strip() for item in mteb_tasks for n in item.split(",") if n.strip()]
        _run_mteb(model, names, out=out, batch_size=batch_size, device=device)
        return
    options = EvalOptions(
        batch_size=batch_size,
        max_corpus=max_corpus,
        limit=limit,
        max_chars=max_chars,
        samples_per_label=samples_per_label,
        n_experiments=n_experiments,
        seed=seed,
    )

    def report(label: str, task: str, score: float) -> None:
        tqdm.write(f"  {label:<40} {task:<32} {100 * score:6.2f}", file=sys.stderr)

    try:
        results = run_eval(
            model,
            out=out,
            data_dir=data,
            task_names=tasks,
            options=options,
            cache=EmbeddingCache(cache_dir, enabled=not no_cache),
            load=lambda spec: load_encoder(spec, device=device),
            on_result=report,
            keep_going=keep_going,
            instructions=instructions,
        )
    except (FileNotFoundError, DataFormatError, UnknownTaskError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    md = out.with_suffix(".md")
    typer.echo(md.read_text(encoding="utf-8"))
    typer.echo(f"wrote {out}, {md} and {out.with_suffix('.png')} in {results['wall_time_s']:.0f} s")
    failed = [m["label"] for m in results["models"] if m.get("error")]
    if failed:
        typer.echo(f"error: {len(failed)} model(s) failed, see their rows: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _run_mteb(specs: list[str], names: list[str], *, out: Path, batch_size: int, device: str | None) -> None:
    """mteb's task classes, each model in turn; one JSON and one markdown table, as the suite's."""
    from promptembedder.evaluation.baselines import load_encoder
    from promptembedder.evaluation.mteb_adapter import MTEBDataError, model_meta, run_mteb_tasks
    from promptembedder.evaluation.runner import _atomic_json, _labels
    from promptembedder.modelcard import find_training_config, training_tasks

    results: dict = {"mteb_tasks": names, "models": []}
    for spec, label in zip(specs, _labels(specs), strict=True):
        encoder = load_encoder(spec, device=device)
        # A model saved by a training run names its training tasks in the run's config (ModelMeta wants them).
        trained_on = set(training_tasks(find_training_config(Path(spec)))) if Path(spec).is_dir() else None
        try:
            scores = run_mteb_tasks(encoder, names, batch_size=batch_size, training_datasets=trained_on or None)
        except MTEBDataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        meta = model_meta(encoder, training_datasets=trained_on or None).model_dump(
            mode="json", include={"n_parameters", "embed_dim", "max_tokens", "license", "training_datasets"}
        )
        results["models"].append({"spec": spec, "label": label, "model_meta": meta, "tasks": scores})
        for task, res in scores.items():
            typer.echo(f"  {label:<40} {task:<32} {100 * res['main_score']:6.2f}", err=True)
    _atomic_json(out, results)
    labels = [m["label"] for m in results["models"]]
    lines = ["| task | type | metric | " + " | ".join(labels) + " |", "|---|---|---|" + "---:|" * len(labels)]
    for task in results["models"][0]["tasks"]:
        first = results["models"][0]["tasks"][task]
        cells = [f"{100 * m['tasks'][task]['main_score']:.2f}" for m in results["models"]]
        lines.append(f"| {task} | {first['task_type']} | {first['metric']} | " + " | ".join(cells) + " |")
    md = out.with_suffix(".md")
    table = f"# Evaluation: {len(names)} mteb tasks, {len(labels)} models\n\n" + "\n".join(lines) + "\n"
    tmp = md.with_name(f".{md.name}.tmp")
    tmp.write_text(table, encoding="utf-8")
    tmp.replace(md)
    typer.echo(table)
    typer.echo(f"wrote {out} and {md}")
