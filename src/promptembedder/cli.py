"""The ``promptembedder`` command line: one typer app, each concept a sub-command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="promptembedder",
    help="Instruction-aware text embeddings from a frozen LLM steered by generated soft prompts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Sub-command groups register themselves here; each lives beside the concept it drives.
from promptembedder.bootstrap import setup_command  # noqa: E402

app.command("setup")(setup_command)

from promptembedder.models.cli import app as models_app  # noqa: E402

app.add_typer(models_app, name="models")

from promptembedder.data.cli import app as data_app  # noqa: E402

app.add_typer(data_app, name="data")

from promptembedder.evaluation.cli import eval_command  # noqa: E402

app.command("eval")(eval_command)

from promptembedder.training.cli import train_command  # noqa: E402

app.command("train")(train_command)

from promptembedder.training.demo import demo_command  # noqa: E402

app.command("demo")(demo_command)

from promptembedder.transfer.cli import prompts_app, transfer_command  # noqa: E402

app.command("transfer")(transfer_command)
app.add_typer(prompts_app, name="prompts")

from promptembedder.bench.cli import bench_command  # noqa: E402

app.command("bench")(bench_command)

from promptembedder.serving.cli import export_command, serve_command  # noqa: E402

app.command("export")(export_command)
app.command("serve")(serve_command)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input (a name, a file, a value), not a bug: one message and exit 2, no traceback."""
    from promptembedder.data.format import DataFormatError
    from promptembedder.embedder import EmbeddingModelMismatchError, NotAPromptEmbedderError
    from promptembedder.evaluation.baselines import ModelSpecError
    from promptembedder.evaluation.runner import UnknownTaskError
    from promptembedder.models.registry import ModelNotInstalledError, UnknownModelError
    from promptembedder.training.config import ConfigError
    from promptembedder.transfer.prompts import SoftPromptError

    return (
        ConfigError,
        DataFormatError,
        EmbeddingModelMismatchError,
        FileNotFoundError,
        IsADirectoryError,
        ModelNotInstalledError,
        ModelSpecError,
        NotADirectoryError,
        NotAPromptEmbedderError,
        PermissionError,
        SoftPromptError,
        UnknownModelError,
        UnknownTaskError,
    )


def main() -> None:
    """The console script. Every sub-command reports bad input itself; this catches what slips through."""
    try:
        app()
    except _user_errors() as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
