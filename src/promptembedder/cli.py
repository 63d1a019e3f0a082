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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
