"""Task bundles: what serving a fixed set of tasks needs, without the Prompting LLM.

``export_bundle(model, {"name": "instruction", ...}, "BUNDLE")`` writes

    bundle.json                  the model config, the Embedding LLM's name and fingerprint, the tasks
    task_prompts.safetensors     each task's aligned soft prompt W s (K, d_e), computed as encode computes it
    alignment.safetensors        W itself, so a Prompting LLM given later can serve new instructions
    soft_prompts/                the prompts s before alignment (``transfer.SoftPrompts``): they also work
                                 through the W of any model transferred from this one

A bundle loads only the frozen Embedding LLM; given the Prompting LLM the bundle's W was trained with, it
also serves instructions it has no task for.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from promptembedder.atomic import replace_folder
from promptembedder.config import AlignmentInit, Conditioning, PromptEmbedderConfig
from promptembedder.embedder import ALIGNMENT_NAME, CONFIG_NAME, PROMPTING_DIR, PromptEmbedder, weights_fingerprint
from promptembedder.embedding import EmbeddingLLM
from promptembedder.transfer.prompts import export_soft_prompts

BUNDLE_NAME = "bundle.json"
TASK_PROMPTS_NAME = "task_prompts.safetensors"
SOFT_PROMPTS_DIR = "soft_prompts"
BUNDLE_KIND = "promptembedder-task-bundle"
FORMAT_VERSION = 1


class BundleError(ValueError):
    """A tasks file, bundle or model folder that cannot be served as asked."""


def read_tasks(path: str | os.PathLike) -> dict[str, str]:
    """A YAML mapping of task name -> instruction (the name is what clients send as ``model``)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"tasks file {path} does not exist: write a YAML mapping such as 'search: Retrieve ...'")
    try:
        tasks = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise BundleError(f"{path} is not valid YAML ({err})") from None
    return check_tasks(tasks, str(path))


def check_tasks(tasks: object, where: str = "tasks") -> dict[str, str]:
    if not isinstance(tasks, dict) or not tasks:
        raise BundleError(
            f"{where} must be a non-empty mapping of task name -> instruction, e.g. 'search: Retrieve ...'"
        )
    for name, instruction in tasks.items():
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise BundleError(f"{where}: task name {name!r} must be a non-empty string without surrounding spaces")
        if not isinstance(instruction, str) or not instruction.strip():
            raise BundleError(f"{where}: the instruction of task {name!r} must be a non-empty string")
    return dict(tasks)


@torch.no_grad()
def export_bundle(model: PromptEmbedder, tasks: dict[str, str], out: str | os.PathLike, *, source: str = "") -> Path:
    """Write a task bundle for ``tasks`` (name -> instruction); built aside and swapped in whole."""
    tasks = check_tasks(tasks)
    soft = export_soft_prompts(model, list(tasks.values()))  # refuses per-text conditioning: no per-task prompt
    was_training = model.training
    model.eval()
    try:
        # prompt_for is what encode runs: the stored prompts are the very bits encode would compute.
        aligned = {
            name: model.prompt_for([], instruction, use_cache=False).float().cpu().contiguous()
            for name, instruction in tasks.items()
        }
    finally:
        model.train(was_training)
    target = Path(out).resolve()
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / BUNDLE_NAME).is_file())):
        raise BundleError(f"{target} exists and is not a task bundle; choose a new or empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.saving-"))
    try:
        save_file(aligned, str(staging / TASK_PROMPTS_NAME))
        weights = {k: v.detach().contiguous().cpu() for k, v in model.alignment.state_dict().items()}
        save_file(weights, str(staging / ALIGNMENT_NAME))
        soft.save(staging / SOFT_PROMPTS_DIR)
        meta = {
            "kind": BUNDLE_KIND,
            "format_version": FORMAT_VERSION,
            "config": model.config.to_dict(),
            "embedding_model": {
                "name": model.config.embedding_model,
                "fingerprint": model.embedding_fingerprint(),
                "hidden_size": model.embedding.hidden_size,
            },
            "prompting_model": model.config.prompting_model,
            "prompting_fingerprint": soft.prompting_fingerprint,
            "alignment_anchors": model.alignment.num_anchors,
            "tasks": tasks,
            "source": source,
        }
        (staging / BUNDLE_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        _readable(staging)
        replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _readable(folder: Path) -> None:
    """Modes as the umask says: mkdtemp makes the folder owner-only, and a bundle is meant to be deployed."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@dataclass
class Servable:
    """What the server embeds with: the Embedding LLM, the named tasks' aligned prompts, and maybe a model.

    ``model`` is None for a bundle served without its Prompting LLM: then only the tasks can be served.
    """

    name: str
    embedding: EmbeddingLLM
    tasks: dict[str, str]
    task_prompts: dict[str, Tensor] = field(repr=False)  # instruction -> (K, d_e), on the embedding's device
    config: PromptEmbedderConfig
    model: PromptEmbedder | None = None
    gate: Tensor | None = None  # config.prompt_gate's learned g (with W in alignment.safetensors), else None

    @property
    def num_soft_tokens(self) -> int:
        return self.config.num_soft_tokens


def is_bundle(folder: str | os.PathLike) -> bool:
    return (Path(folder) / BUNDLE_NAME).is_file()


def _device(device: str | torch.device | None) -> str:
    return str(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def read_bundle(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    if not is_bundle(folder):
        raise BundleError(f"{folder} is not a task bundle (no {BUNDLE_NAME}); write one with promptembedder export")
    try:
        meta = json.loads((folder / BUNDLE_NAME).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BundleError(f"{folder / BUNDLE_NAME} is not valid JSON ({err}); the bundle is damaged") from None
    if meta.get("kind") != BUNDLE_KIND or meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{folder} holds a bundle of another kind or version than {BUNDLE_KIND} v{FORMAT_VERSION}")
    missing = [n for n in (TASK_PROMPTS_NAME, ALIGNMENT_NAME) if not (folder / n).is_file()]
    if missing:
        raise BundleError(f"{folder} lacks {', '.join(missing)}: the bundle is incomplete; export it again")
    return meta


def load_bundle(
    folder: str | os.PathLike,
    *,
    prompting: str | os.PathLike | None = None,
    embedding_model: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Servable:
    """A bundle ready to serve; ``prompting`` (the Prompting LLM, or the saved PromptEmbedder holding it) adds
    new instructions; ``embedding_model`` points at the backbone if it moved."""
    from promptembedder.models import load_base_model, load_causal_lm

    folder, device = Path(folder), _device(device)
    meta = read_bundle(folder)
    config = PromptEmbedderConfig.from_dict(meta["config"])
    recorded = meta["embedding_model"]
    name = embedding_model or recorded["name"]
    try:
        backbone, tokenizer = load_base_model(name, device=device, dtype=dtype)
    except Exception as err:  # noqa: BLE001 - any loading failure gets the same actionable message
        raise BundleError(
            f"The Embedding LLM {name!r} this bundle needs could not be loaded ({err}). Prepare it "
            "(promptembedder models prepare NAME) or pass --embedding-model PATH."
        ) from err
    found = weights_fingerprint(backbone)
    if found != recorded["fingerprint"]:
        raise BundleError(
            f"The Embedding LLM {name!r} (fingerprint {found}) is not the one this bundle was exported for "
            f"({recorded['name']!r}, fingerprint {recorded['fingerprint']}): its soft prompts would be meaningless "
            "there."
        )
    model = None
    if prompting is None:
        embedding = EmbeddingLLM.from_config(backbone, tokenizer, config)
    else:
        source = Path(prompting)
        if (source / CONFIG_NAME).is_file():  # a saved PromptEmbedder: its Prompting LLM lives in a subfolder
            source = source / PROMPTING_DIR
        lm, lm_tokenizer = load_causal_lm(str(source), device=device, dtype=dtype)
        found = weights_fingerprint(lm)
        if found != meta["prompting_fingerprint"]:
            raise BundleError(
                f"The Prompting LLM at {prompting} (fingerprint {found}) is not the one this bundle's "
                f"W was trained with (fingerprint {meta['prompting_fingerprint']}): pass the model the bundle was "
                f"exported from{' (' + meta['source'] + ')' if meta.get('source') else ''}."
            )
        build = PromptEmbedderConfig.from_dict({**config.to_dict(), "alignment_init": AlignmentInit.RANDOM.value})
        model = PromptEmbedder.from_modules(build, lm, lm_tokenizer, backbone, tokenizer, seed=None)
        model.alignment.load_state_dict(load_file(str(folder / ALIGNMENT_NAME), device=device))
        model.alignment.num_anchors = meta.get("alignment_anchors")
        model.config.alignment_init = config.alignment_init
        model.eval()
        embedding = model.embedding
    stored = load_file(str(folder / TASK_PROMPTS_NAME), device=str(embedding.device))
    tasks = check_tasks(meta["tasks"], f"{folder / BUNDLE_NAME}")
    gate = None
    if config.prompt_gate:
        gate = model.alignment.gate if model is not None else _stored_gate(folder, str(embedding.device))
    return Servable(
        name=folder.resolve().name,
        embedding=embedding,
        tasks=tasks,
        task_prompts={tasks[task]: prompt for task, prompt in stored.items()},
        config=config,
        model=model,
        gate=gate,
    )


def _stored_gate(folder: Path, device: str) -> Tensor:
    """The gate scalar alone from the bundle's alignment file (W itself is not needed without a Prompting LLM)."""
    with safe_open(str(folder / ALIGNMENT_NAME), framework="pt", device=device) as weights:
        if "gate" not in weights.keys():
            raise BundleError(
                f"{folder / ALIGNMENT_NAME} has no prompt gate, which its config asks for; export it again"
            )
        return weights.get_tensor("gate")


@torch.no_grad()
def servable_model(model: PromptEmbedder, tasks: dict[str, str] | None = None, *, name: str = "model") -> Servable:
    """A loaded PromptEmbedder as a Servable: any instruction, and the named tasks' prompts computed once."""
    tasks = check_tasks(tasks) if tasks else {}
    model.eval()
    prompts = {}
    if tasks and model.config.conditioning is Conditioning.INSTRUCTION:
        prompts = {instruction: model.prompt_for([], instruction, use_cache=False) for instruction in tasks.values()}
    return Servable(
        name=name,
        embedding=model.embedding,
        tasks=tasks,
        task_prompts=prompts,
        config=model.config,
        model=model,
        gate=model.alignment.gate,
    )


def load_servable(
    path: str | os.PathLike,
    *,
    tasks: dict[str, str] | None = None,
    prompting: str | os.PathLike | None = None,
    embedding_model: str | None = None,
    device: str | torch.device | None = None,
) -> Servable:
    """A task bundle, a saved PromptEmbedder or a run folder (its ``model/``), ready to serve."""
    folder = Path(path).expanduser()
    if is_bundle(folder):
        if tasks:
            raise BundleError("a bundle serves the tasks it was exported with: add tasks by exporting it again")
        return load_bundle(folder, prompting=prompting, embedding_model=embedding_model, device=device)
    if prompting is not None:
        raise BundleError("--prompting is for a bundle; a saved PromptEmbedder already holds its Prompting LLM")
    model_dir = folder / "model" if (folder / "model" / CONFIG_NAME).is_file() else folder
    if not (model_dir / CONFIG_NAME).is_file():
        raise BundleError(
            f"{folder} is neither a task bundle ({BUNDLE_NAME}) nor a saved PromptEmbedder ({CONFIG_NAME}): "
            "pass a folder written by promptembedder export, save_pretrained or train"
        )
    model = PromptEmbedder.from_pretrained(model_dir, embedding_model=embedding_model, device=_device(device))
    return servable_model(model, tasks, name=folder.resolve().name)
