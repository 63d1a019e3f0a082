"""``promptembedder train CONFIG.yaml [--set key=value ...] [--resume]``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from promptembedder.data.format import DataFormatError
from promptembedder.training.config import ConfigError, load_config, packaged_configs


def train_command(
    config: Path = typer.Argument(
        None,
        help=f"A YAML training config, or a packaged one by name ({', '.join(packaged_configs())}); "
        "omit for the defaults.",
    ),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set optim.lr=5e-5 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in output_dir."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Continue from this checkpoint folder."),
) -> None:
    """Train the Prompting LLM and the alignment map contrastively; the Embedding LLM stays frozen."""
    from promptembedder.training.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(config, set_)
        trainer = Trainer(cfg)
        out = trainer.run(resume=str(checkpoint) if checkpoint else resume)
    except (ConfigError, DataFormatError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if trainer.accelerator.is_main_process:
        typer.echo(f"trained {trainer.describe()}")
        typer.echo(f"model saved to {out}")
