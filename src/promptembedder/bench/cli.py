"""``promptembedder bench``: LoRA, prompt tuning and PromptEmbedder variants side by side, one process each."""

from __future__ import annotations

import copy
import shlex
import sys
from pathlib import Path

import typer


def bench_command(
    config: str = typer.Argument(None, help="Base YAML training config, or a packaged config's name (optional)."),
    set_: list[str] = typer.Option([], "--set", help="Override a base config key for every variant (repeatable)."),
    variants: str = typer.Option(
        None, "--variants", "-v", help="Comma-separated variants (default: lora, prompt-tuning and the PE ones)."
    ),
    steps: int = typer.Option(40, "--steps", min=2, help="Training steps per variant."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="First steps left out of the step-time median."),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="Held-out quality along the steps."),
    eval_tasks: str = typer.Option(
        "wordnet_example_gloss,wordnet_sense_reranking", "--eval-tasks", help="Held-out eval tasks (comma-separated)."
    ),
    eval_points: int = typer.Option(3, "--eval-points", min=1, help="Evaluations per variant, from step 0 to the end."),
    eval_limit: int = typer.Option(32, "--eval-limit", min=1, help="At most this many queries/samples per task."),
    eval_max_corpus: int = typer.Option(64, "--eval-max-corpus", min=1, help="Retrieval corpus cap."),
    eval_max_chars: int = typer.Option(256, "--eval-max-chars", min=1, help="Cut eval texts to about this length."),
    eval_data: Path = typer.Option(
        None, "--eval-data", help="Data folder with eval/*.jsonl (default: the in-repo sample, as the training data)."
    ),
    threads: int = typer.Option(
        None, "--threads", min=1, help="torch threads per variant (1 avoids OpenMP stalls on a busy shared CPU)."
    ),
    timeout: float = typer.Option(None, "--timeout", help="Seconds after which a variant is stopped."),
    out: Path = typer.Option(Path("bench/results/bench.json"), "--out", "-o", help="Results JSON (.md, .png beside)."),
    cpu_defaults: bool = typer.Option(
        True, "--cpu-defaults/--no-cpu-defaults", help="Start from the packaged models and short texts (see docs)."
    ),
) -> None:
    """Train each variant with the same trainer, data, steps, batch and lengths; table and plots vs LoRA."""
    from promptembedder.bench.runner import CPU_DEFAULTS, QualitySettings, run_bench
    from promptembedder.bench.variants import parse_variants
    from promptembedder.data import sample_dir
    from promptembedder.training.config import (
        ConfigError,
        apply_overrides,
        check_inputs,
        config_from_dict,
        load_config,
    )

    try:
        chosen = parse_variants(variants)
        # Every default written out now: a variant that starts later must not pick up a changed default.
        base = load_config(config, []).to_dict()
        base = apply_overrides(base, [*(CPU_DEFAULTS if cpu_defaults else ()), *set_])
        for variant in chosen:  # fail on a bad key, value, model name or file before any process starts
            check_inputs(config_from_dict(apply_overrides(copy.deepcopy(base), list(variant.overrides))))
        if eval_data is not None and not (eval_data / "eval").is_dir():
            raise ConfigError(f"--eval-data {eval_data}: no eval/ folder there; give a built data folder")
    except (ValueError, ConfigError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    settings = None
    if quality:
        points = (
            sorted({round(i * steps / (eval_points - 1)) for i in range(eval_points)}) if eval_points > 1 else [steps]
        )
        settings = QualitySettings(
            tasks=[t.strip() for t in eval_tasks.split(",") if t.strip()],
            at_steps=points,
            limit=eval_limit,
            max_corpus=eval_max_corpus,
            max_chars=eval_max_chars,
            cache_dir=str(out.parent / f"{out.stem}-embeddings"),
            data_dir=str(eval_data or sample_dir()),
        )
    command = "promptembedder bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    results = run_bench(
        chosen,
        config=base,
        steps=steps,
        warmup=warmup,
        out=out,
        quality=settings,
        threads=threads,
        timeout_s=timeout,
        command=command,
        title="PromptEmbedder vs LoRA and prompt tuning",
    )
    typer.echo(out.with_suffix(".md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {out}, {out.with_suffix('.md')} and plots in {results['wall_s']:.0f} s")
