"""``promptembedder demo``: the main job end to end on a laptop-sized budget.

Trains the packaged demo config (smollm2-135m writes soft prompts for the frozen gemma3-270m) on the data
sample, then evaluates the trained model beside the same model untrained and the training-free baselines
on the held-out sample suite, and prints one side-by-side table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from tqdm.auto import tqdm

from promptembedder.training.config import ConfigError, check_inputs, load_config


def demo_command(
    steps: int = typer.Option(None, "--steps", min=1, help="Training steps (default: the demo config's)."),
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder: checkpoints, model, metrics, results."),
    data: Path = typer.Option(
        None, "--data", help="Eval data folder (default: the held-out sample shipped with the package)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted demo run."),
    set_: list[str] = typer.Option([], "--set", help="Override a training config key (repeatable)."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many items per eval task (a quick look)."),
    tasks: list[str] = typer.Option(None, "--tasks", help="Eval tasks (file stems), repeatable; default all."),
) -> None:
    """Train on the packaged defaults, then compare against the untrained model and training-free baselines."""
    from promptembedder.data import sample_dir
    from promptembedder.embedder import PromptEmbedder
    from promptembedder.evaluation.cache import EmbeddingCache
    from promptembedder.evaluation.runner import run_eval
    from promptembedder.evaluation.tasks import EvalOptions
    from promptembedder.training.trainer import Trainer

    started = time.perf_counter()
    overrides = [f"output_dir={out}", *([f"steps={steps}"] if steps else []), *set_]
    try:
        config = load_config("demo", overrides)
        check_inputs(config)
        if data is not None and not (Path(data) / "eval").is_dir():
            raise ConfigError(
                f"--data {data}: no eval/ folder there; give a built data folder (promptembedder data build)"
            )
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    untrained = out / "untrained"
    if not (untrained / "promptembedder_config.json").is_file():
        # The same config and seed as the run: the comparison isolates what training changed.
        PromptEmbedder.from_config(config.model, device="cpu", seed=config.seed).save_pretrained(untrained)
    trained = Trainer(config).run(resume=resume)
    train_s = time.perf_counter() - started
    backbone = config.model.embedding_model
    specs = [
        str(trained),
        str(untrained),
        f"baseline:{backbone}:mean",
        f"baseline:{backbone}:last",
        f"instruct:{backbone}",
        "minilm",
    ]
    results = run_eval(
        specs,
        out=out / "eval.json",
        data_dir=data or sample_dir(),
        task_names=tasks or None,
        options=EvalOptions(batch_size=16, max_chars=1000, n_experiments=3, limit=limit),
        cache=EmbeddingCache(),
        keep_going=True,  # one baseline that cannot run must not cost the table
        progress=True,
        on_result=lambda label, task, score: tqdm.write(
            f"  {label:<40} {task:<32} {100 * score:6.2f}", file=sys.stderr
        ),
    )
    typer.echo((out / "eval.md").read_text(encoding="utf-8"))
    failed = [m["label"] for m in results["models"] if m.get("error")]
    if failed:
        typer.echo(f"warning: {len(failed)} model(s) failed, see their rows: {', '.join(failed)}", err=True)
    typer.echo(
        f"trained and evaluated in {time.perf_counter() - started:.0f} s (training {train_s:.0f} s); "
        f"results in {out / 'eval.json'} ({results['wall_time_s']:.0f} s of evaluation)"
    )
