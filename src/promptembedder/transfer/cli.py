"""``promptembedder transfer`` (train only a new W for a new Embedding LLM) and ``promptembedder prompts``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from promptembedder.training.config import TransferInit, TransferPrompting

DEFAULT_PATIENCE = 5
"""Dev evaluations without a gain after which a transfer stops. Replayed on thirteen recorded transfer curves on
three backbones (bench/transfer/patience.py, issue 15 thirteenth round), 5 kept what training every step kept
(-0.001 on average, 135 of 150 steps) and 3 lost 0.012: transfers often dip early and climb back."""

prompts_app = typer.Typer(help="Soft prompts that travel between backbones.", no_args_is_help=True)


def transfer_command(
    config: Path = typer.Argument(None, help="YAML training config (data, loss, steps...; omit for the defaults)."),
    source: str = typer.Option(
        ..., "--from", help="A trained PromptEmbedder folder, or a run folder (its model/ is used)."
    ),
    embedding_model: str = typer.Option(
        ..., "--embedding-model", help="The new frozen Embedding LLM: a known short name, a folder or a hub id."
    ),
    init: TransferInit = typer.Option(TransferInit.VOCAB, "--init", help="How the new alignment map W starts."),
    prompting: TransferPrompting = typer.Option(
        None,
        "--prompting",
        help="frozen: train W only; trainable: fine-tune the source's Prompting LLM with W. Default: the config's "
        "transfer.prompting (frozen).",
    ),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set steps=50 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in output_dir."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Continue from this checkpoint folder."),
    patience: int = typer.Option(
        None,
        "--patience",
        min=0,
        help=f"Stop once this many dev evaluations in a row bring no gain (0: run all steps). Default: the "
        f"config's patience, or {DEFAULT_PATIENCE} when it has none (dev evaluated every steps/20 if eval_every is 0).",
    ),
) -> None:
    """Keep a trained Prompting LLM frozen and train only a new alignment map W for another Embedding LLM.

    Same data, loss, checkpoints, progress and metrics as train. The Prompting LLM's settings are the source's.
    It stops by itself once the dev score plateaus and says how many steps and minutes that took.
    """
    from promptembedder.data.format import DataFormatError
    from promptembedder.training.config import ConfigError, config_from_dict, load_config
    from promptembedder.training.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        data = load_config(config, set_).to_dict()
        data["transfer"].update(source=source, init=init.value)  # keeps transfer.prompting from --set/YAML
        if prompting is not None:
            data["transfer"]["prompting"] = prompting.value
        data["model"]["embedding_model"] = embedding_model
        if patience is not None or not data["patience"]:
            data["patience"] = DEFAULT_PATIENCE if patience is None else patience
        if data["patience"] and not data["eval_every"]:
            data["eval_every"] = max(1, data["steps"] // 20)
        # Rebuilt from the dict: --from/--embedding-model/--init get the validation a YAML transfer section gets.
        trainer = Trainer(config_from_dict(data))
        out = trainer.run(resume=str(checkpoint) if checkpoint else resume)
    except (ConfigError, DataFormatError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if trainer.accelerator.is_main_process:
        typer.echo(f"trained {trainer.describe()}")
        typer.echo(f"model saved to {out}")


def _instructions_in(paths: list[Path]) -> list[str]:
    """Every instruction named in training files (one per line) and eval files (the meta header)."""
    from promptembedder.data.format import list_eval_tasks, list_train_files

    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif (path / "train").is_dir() or (path / "eval").is_dir():  # a built data folder
            files += list_train_files(path) if (path / "train").is_dir() else []
            files += list_eval_tasks(path) if (path / "eval").is_dir() else []
        elif path.is_dir():
            files += sorted(path.glob("*.jsonl"))
        else:
            raise FileNotFoundError(f"{path} is neither a file nor a folder")
    found: dict[str, None] = {}
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if "instruction" in record:
                    found.setdefault(record["instruction"], None)
                if record.get("kind") == "meta":
                    break  # an eval file: one instruction, in its header
    return list(found)


@prompts_app.command("export")
def export_command(
    model: Path = typer.Option(..., "--model", "-m", help="A saved PromptEmbedder (or a run folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write soft_prompts.safetensors and .json to."),
    instruction: list[str] = typer.Option([], "--instruction", "-i", help="An instruction (repeatable)."),
    data: list[Path] = typer.Option(
        [], "--data", help="JSONL files or data folders whose instructions to export (default: the data sample)."
    ),
    device: str = typer.Option(None, "--device", help="torch device (default: cpu, or cuda when present)."),
) -> None:
    """Save each instruction's soft prompt (before alignment) once; any model transferred from this one uses it."""
    from promptembedder.data import sample_dir
    from promptembedder.embedder import PromptEmbedder
    from promptembedder.transfer.build import TransferError, resolve_source
    from promptembedder.transfer.prompts import SoftPromptError, export_soft_prompts

    try:
        folder = resolve_source(model)
        instructions = list(instruction)
        if data or not instructions:
            instructions += _instructions_in(list(data) or [sample_dir()])
        loaded = PromptEmbedder.from_pretrained(folder, device=device)
        prompts = export_soft_prompts(loaded, instructions)
    except (TransferError, SoftPromptError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    prompts.save(out)
    typer.echo(f"wrote {len(prompts)} soft prompts {tuple(prompts.prompts.shape[1:])} to {out}")


@prompts_app.command("inspect")
def inspect_command(
    model: Path = typer.Option(..., "--model", "-m", help="A saved PromptEmbedder (or a run folder)."),
    instruction: list[str] = typer.Option([], "--instruction", "-i", help="An instruction (repeatable)."),
    data: list[Path] = typer.Option(
        [], "--data", help="JSONL files or data folders whose instructions to read (default: the data sample)."
    ),
    top: int = typer.Option(3, "--top", min=1, help="Nearest vocabulary tokens shown per soft vector."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    device: str = typer.Option(None, "--device", help="torch device (default: cpu, or cuda when present)."),
) -> None:
    """How soft and how instruction-specific the soft prompts are: each step's entropy and nearest tokens.

    A Prompting LLM whose every step is one token (entropy near 0, cosine 1.00) passes no gradient and gives
    every instruction the same prompt; the summary says so and how to train against it.
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from promptembedder.atomic import write_text
    from promptembedder.data import sample_dir
    from promptembedder.embedder import PromptEmbedder
    from promptembedder.prompting import nearest_tokens, prompt_statistics, vocabulary_embeddings
    from promptembedder.transfer.build import TransferError, resolve_source

    try:
        folder = resolve_source(model)
        instructions = list(dict.fromkeys(instruction))
        if data or not instructions:
            instructions += [i for i in _instructions_in(list(data) or [sample_dir()]) if i not in instructions]
        loaded = PromptEmbedder.from_pretrained(folder, device=device)
    except (TransferError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    prompting = loaded.prompting.eval()
    with torch.no_grad():
        soft, entropy = prompting(instructions, return_entropy=True)
    cos, ids = nearest_tokens(soft, vocabulary_embeddings(prompting.model), top)
    stats = prompt_statistics(prompting, instructions, made=(soft, entropy))
    table = Table(title=f"soft prompts of {folder}", show_lines=False)
    for column in ("instruction", "step", "entropy (nats)", f"nearest {top} tokens (cosine)"):
        table.add_column(column)
    rows = []
    for i, text in enumerate(instructions):
        for k in range(soft.shape[1]):
            tokens = [prompting.tokenizer.decode([int(t)]) for t in ids[i, k]]
            pairs = ", ".join(f"{t!r} {float(c):.2f}" for t, c in zip(tokens, cos[i, k], strict=True))
            table.add_row(text[:48] if k == 0 else "", str(k + 1), f"{float(entropy[i, k]):.2f}", pairs)
            rows.append(
                {
                    "instruction": text,
                    "step": k + 1,
                    "entropy": float(entropy[i, k]),
                    "nearest": [[t, float(c)] for t, c in zip(tokens, cos[i, k], strict=True)],
                }
            )
    console = Console()
    console.print(table)
    console.print(
        f"{len(instructions)} instructions: entropy {stats['entropy']:.2f} nats on average (lowest "
        f"{stats['entropy_min']:.2f}); distinct {stats['distinct']:.2e} (mean 1 - cos between instructions' prompts)"
    )
    if len(instructions) > 1 and stats["distinct"] < 1e-3:
        console.print(
            "[bold]The prompts hardly differ between instructions: this Prompting LLM ignores its instruction. "
            "Retrain with --set entropy_floor=2 to keep its relaxation soft.[/bold]"
        )
    if json_out is not None:
        write_text(json_out, json.dumps({"summary": stats, "steps": rows}, indent=2) + "\n")
