"""``promptembedder export`` (a task bundle) and ``promptembedder serve`` (the embeddings server)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import typer

from promptembedder.serving.config import ServeConfig

_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(ServeConfig)}
_DEFAULTS = ServeConfig()


UVICORN_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2) from None


def export_command(
    model: Path = typer.Option(..., "--model", "-m", help="A saved PromptEmbedder, or a run folder (its model/)."),
    tasks: Path = typer.Option(..., "--tasks", "-t", help="YAML mapping of task name -> instruction."),
    out: Path = typer.Option(..., "--out", "-o", help="The bundle folder to write."),
    device: str = typer.Option(None, "--device", help="torch device (default: cuda when present, else cpu)."),
) -> None:
    """Write a task bundle: the Embedding LLM's reference, W and each task's aligned soft prompt.

    The bundle serves its tasks without loading the Prompting LLM (promptembedder serve BUNDLE).
    """
    from promptembedder.embedder import CONFIG_NAME, PromptEmbedder
    from promptembedder.serving.bundle import BundleError, export_bundle, read_tasks
    from promptembedder.transfer.prompts import SoftPromptError

    try:
        named = read_tasks(tasks)
        folder = model / "model" if (model / "model" / CONFIG_NAME).is_file() else model
        loaded = PromptEmbedder.from_pretrained(folder, device=device)
        target = export_bundle(loaded, named, out, source=str(folder.resolve()))
    except (BundleError, SoftPromptError, ValueError, FileExistsError) as err:  # ValueError: the model's own errors
        _fail(err)
    typer.echo(f"wrote a bundle of {len(named)} tasks ({', '.join(named)}) to {target}")


def serve_command(
    path: Path = typer.Argument(..., help="A task bundle, a saved PromptEmbedder, or a run folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    tasks: Path = typer.Option(None, "--tasks", help="For a saved model: YAML task name -> instruction to serve."),
    prompting: Path = typer.Option(
        None, "--prompting", help="For a bundle: its Prompting LLM (or the model it came from), for new instructions."
    ),
    embedding_model: str = typer.Option(None, "--embedding-model", help="The Embedding LLM's path, if it moved."),
    device: str = typer.Option(None, "--device", help="torch device (default: cuda when present, else cpu)."),
    max_batch_tokens: int = typer.Option(_DEFAULTS.max_batch_tokens, help=_HELP["max_batch_tokens"]),
    batch_window_ms: float = typer.Option(_DEFAULTS.batch_window_ms, help=_HELP["batch_window_ms"]),
    max_texts_per_request: int = typer.Option(_DEFAULTS.max_texts_per_request, help=_HELP["max_texts_per_request"]),
    max_tokens_per_text: int = typer.Option(None, help=_HELP["max_tokens_per_text"]),
    truncate: bool = typer.Option(_DEFAULTS.truncate, "--truncate/--refuse-long", help=_HELP["truncate"]),
    max_body_bytes: int = typer.Option(_DEFAULTS.max_body_bytes, help=_HELP["max_body_bytes"]),
    max_cached_instructions: int = typer.Option(
        _DEFAULTS.max_cached_instructions, help=_HELP["max_cached_instructions"]
    ),
    api_key: str = typer.Option(None, "--api-key", envvar="PROMPTEMBEDDER_API_KEY", help=_HELP["api_key"]),
    graceful_timeout: float = typer.Option(
        30.0, "--graceful-timeout", help="On Ctrl-C/SIGTERM, seconds to finish the requests in flight."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve embeddings over HTTP as the OpenAI API does (POST /v1/embeddings), batching concurrent requests.

    A bundle's tasks are chosen by the request's 'model'; with a Prompting LLM any 'instruction' works too.
    """
    try:
        import uvicorn

        from promptembedder.serving.app import create_app
    except ImportError as err:
        _fail(ImportError(f"serving needs the 'serve' extra ({err}): pip install 'promptembedder[serve]'"))
    from promptembedder.embedder import EmbeddingModelMismatchError, NotAPromptEmbedderError
    from promptembedder.serving.bundle import BundleError, load_servable, read_tasks

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if log_level not in UVICORN_LOG_LEVELS:  # checked before the model loads, not inside uvicorn.run
        _fail(ValueError(f"--log-level {log_level!r}: choose one of {', '.join(UVICORN_LOG_LEVELS)}"))
    try:
        config = ServeConfig(
            max_batch_tokens=max_batch_tokens,
            batch_window_ms=batch_window_ms,
            max_texts_per_request=max_texts_per_request,
            max_tokens_per_text=max_tokens_per_text,
            truncate=truncate,
            max_body_bytes=max_body_bytes,
            max_cached_instructions=max_cached_instructions,
            api_key=api_key,
        )
        named = read_tasks(tasks) if tasks is not None else None
        servable = load_servable(path, tasks=named, prompting=prompting, embedding_model=embedding_model, device=device)
        app = create_app(servable, config)
    except (BundleError, NotAPromptEmbedderError, EmbeddingModelMismatchError, ValueError) as err:
        _fail(err)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful_timeout)
