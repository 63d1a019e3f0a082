"""Training configuration: a validated dataclass tree, read from YAML and overridden with ``--set key=value``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from promptembedder.config import Conditioning, PromptEmbedderConfig


class Decay(str, Enum):
    LINEAR = "linear"
    COSINE = "cosine"
    CONSTANT = "constant"


class Precision(str, Enum):
    FP32 = "fp32"
    BF16 = "bf16"


class PromptingTraining(str, Enum):
    FULL = "full"
    """Every weight of the Prompting LLM trains."""
    LORA = "lora"
    """The Prompting LLM trains through LoRA adapters (peft); merged into it when the model is saved."""


class TransferInit(str, Enum):
    """How the new alignment map starts when only W is trained for a new Embedding LLM."""

    VOCAB = "vocab"
    """Least squares from the Prompting LLM's vocabulary embeddings to the new backbone's (shared tokens)."""
    RANDOM = "random"
    """nn.Linear's default initialisation (seeded)."""
    COMPOSE = "compose"
    """The trained W followed by a least-squares map from the old backbone's input space to the new one's."""
    MIXTURE = "mixture"
    """VOCAB plus a mixture table: each soft token's weight on a shared token lands on the new backbone's own row."""


class TransferPrompting(str, Enum):
    """Whether a transfer keeps the source's Prompting LLM as it is or fine-tunes it with the new W."""

    FROZEN = "frozen"
    """Only W learns: the soft prompts stay the source's (cached per instruction, so a step is cheap)."""
    TRAINABLE = "trainable"
    """The source's Prompting LLM is a warm start and learns with W (a from-scratch step's cost)."""


class Method(str, Enum):
    """What trains: PromptEmbedder, or one of the baselines it is measured against (same trainer and data)."""

    PROMPTEMBEDDER = "promptembedder"
    """The Prompting LLM and W; the Embedding LLM frozen."""
    LORA = "lora"
    """LoRA adapters on the Embedding LLM (settings in ``lora``); queries read the instruction as text."""
    PROMPT_TUNING = "prompt-tuning"
    """K learned input vectors per training instruction in front of the frozen Embedding LLM's text."""


class CompileMode(str, Enum):
    NONE = "none"
    DEFAULT = "default"
    """torch.compile with inductor's default mode: fused kernels, fewer launches."""
    REDUCE_OVERHEAD = "reduce-overhead"
    """torch.compile with CUDA graphs: one launch per graph where shapes repeat (GPU)."""
    MAX_AUTOTUNE_NO_CUDAGRAPHS = "max-autotune-no-cudagraphs"


class ConfigError(ValueError):
    """A training config that names an unknown key or holds an impossible value."""


class InstructionChoice(str, Enum):
    """Which wording of a task's instruction a batch reads."""

    DRAWN = "drawn"
    """One of the task's instructions (``instructions.json`` beside the training files), drawn per batch."""
    CANONICAL = "canonical"
    """Always the instruction written in the examples (the task's first wording)."""


class NegativesSource(str, Enum):
    """Where an example's hard negatives come from."""

    GIVEN = "given"
    """The build's negatives (other senses, neighbouring verses, packages of the same section...)."""
    MINED = "mined"
    """Those mined by the frozen Embedding LLM (``promptembedder data mine``); the given ones where none."""
    BOTH = "both"
    """Mined first, then the given ones."""


@dataclass
class DataConfig:
    train_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Training JSONL files or folders (their *.jsonl); 'sample' names the data sample shipped "
            "with the package, 'built' the output of `promptembedder data build`; empty: the sample."
        },
    )
    mixing_alpha: float = field(
        default=1.0,
        metadata={"help": "Task i is drawn with probability ~ size_i ** alpha (1: proportional, 0: uniform)."},
    )
    hard_negatives: int = field(default=1, metadata={"help": "Hard negatives used per example (0 for none)."})
    negatives: NegativesSource = field(
        default=NegativesSource.GIVEN, metadata={"help": "given, mined (by the frozen backbone) or both."}
    )
    instructions: InstructionChoice = field(
        default=InstructionChoice.DRAWN,
        metadata={"help": "drawn (one of the task's wordings per batch, where the data lists them) or canonical."},
    )
    dev_per_task: int = field(default=32, metadata={"help": "Examples per task held out as the dev slice."})
    split_seed: int = field(
        default=-1,
        metadata={
            "help": "Seed of the dev slice's draw; -1: the run's seed. Set it to train several seeds against one "
            "dev slice (one that stays held out from a transfer source trained with this split seed)."
        },
    )
    max_query_length: int = field(default=64, metadata={"help": "Most query tokens (soft prompt included)."})
    max_document_length: int = field(default=128, metadata={"help": "Most document tokens."})


@dataclass
class OptimConfig:
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate of the Prompting LLM."})
    alignment_lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the alignment map W."})
    gate_lr: float = field(
        default=0.0,
        metadata={
            "help": "AdamW learning rate of the prompt gate g (model.prompt_gate), a scalar that has to travel "
            "from 0 to where the prompt pays in one run; 0: alignment_lr, with W."
        },
    )
    deep_lr: float = field(
        default=0.0,
        metadata={
            "help": "AdamW learning rate of W's per-layer deep-prompt maps (model.deep_prompt), which reach "
            "every layer and so move the backbone's states more per unit of rate than W does; 0: alignment_lr."
        },
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    warmup_steps: int = field(default=10, metadata={"help": "Linear warm-up steps."})
    decay: Decay = field(default=Decay.LINEAR, metadata={"help": "linear, cosine or constant after warm-up."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (0 disables)."})
    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "Keep an exponential moving average of the trainable weights (decay per step, warmed up as "
            "min(decay, (1+step)/(10+step))); dev evaluations and the saved model use the average, the optimiser "
            "the raw weights. Smooths swings shorter than about 1/(1-decay) steps. 0: off."
        },
    )


@dataclass
class LoraConfig:
    r: int = field(default=16, metadata={"help": "LoRA rank."})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    target_modules: str = field(default="all-linear", metadata={"help": "peft target_modules."})


@dataclass
class TransferConfig:
    source: str = field(
        default="",
        metadata={
            "help": "A trained PromptEmbedder folder, or a run folder (its model/): its Prompting LLM is loaded "
            "frozen and only a new W is trained for model.embedding_model. Empty: ordinary training."
        },
    )
    init: TransferInit = field(
        default=TransferInit.VOCAB,
        metadata={"help": "How the new W starts: vocab, random or compose (model.alignment_init is not used)."},
    )
    prompting: TransferPrompting = field(
        default=TransferPrompting.FROZEN,
        metadata={
            "help": "frozen: train W only (the paper's transfer); trainable: the source's Prompting LLM learns "
            "too, from its trained weights (costs what a from-scratch step costs)."
        },
    )


@dataclass
class SpeedConfig:
    """Options that change how fast a step runs, never what it computes (beyond float rounding)."""

    kv_cache: bool = field(
        default=True,
        metadata={
            "help": "The Prompting LLM keeps keys/values (with their graph) through its K generation steps "
            "instead of re-reading the instruction each step. Off under gradient checkpointing."
        },
    )
    factored_vocab_grad: bool = field(
        default=True,
        metadata={
            "help": "Write the gradients of the Prompting LLM's vocabulary-sized matrices (head, embeddings) once "
            "per generation from thin factors, instead of one dense outer product per step and use."
        },
    )
    pad_instructions_to: int = field(
        default=0,
        metadata={"help": "Left-pad instructions to a multiple of this many tokens (fixed shapes for compile; 0: no)."},
    )
    compile: CompileMode = field(
        default=CompileMode.NONE,
        metadata={"help": "torch.compile the Prompting LLM's K-step generation (launch-bound: batch 1 per task)."},
    )
    compile_backbone: bool = field(
        default=False,
        metadata={"help": "Compile the Embedding LLM's transformer too (its shapes follow text lengths: recompiles)."},
    )
    compile_backend: str = field(default="inductor", metadata={"help": "torch.compile backend."})
    precompute_documents: bool = field(
        default=False,
        metadata={
            "help": "With plain cached documents: embed every document the run will draw once, in large "
            "length-sorted batches, before the first step (what later epochs get from the cache anyway)."
        },
    )
    fused_optimizer: bool = field(default=False, metadata={"help": "AdamW(fused=True): one kernel per step."})
    prompt_once: bool = field(
        default=True,
        metadata={
            "help": "Generate the step's soft prompt once and backpropagate the summed gradient of all its uses "
            "(queries, prompted documents, every GradCache chunk) through the Prompting LLM in one pass, instead "
            "of regenerating it for each use. Instruction conditioning on one process; the same gradients."
        },
    )


@dataclass
class TrainConfig:
    method: Method = field(
        default=Method.PROMPTEMBEDDER, metadata={"help": "promptembedder, or a baseline: lora, prompt-tuning."}
    )
    model: PromptEmbedderConfig = field(default_factory=PromptEmbedderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    prompting_training: PromptingTraining = field(
        default=PromptingTraining.FULL, metadata={"help": "full or lora: how the Prompting LLM trains."}
    )
    lora: LoraConfig = field(default_factory=LoraConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    batch_size: int = field(default=16, metadata={"help": "Global batch (queries per step, all processes)."})
    loss_temperature: float = field(default=0.02, metadata={"help": "InfoNCE temperature."})
    entropy_floor: float = field(
        default=0.0,
        metadata={
            "help": "Nats of entropy each soft token's relaxed distribution must keep (hinge penalty; 0: off). "
            "A saturated softmax passes no gradient to the Prompting LLM and gives every instruction one prompt."
        },
    )
    entropy_weight: float = field(default=1.0, metadata={"help": "Weight of the entropy-floor penalty."})
    prompt_similarity_ceiling: float = field(
        default=1.0,
        metadata={
            "help": "Largest cosine the step's soft prompt may have with other tasks' prompts before a hinge "
            "penalty pushes it away (1: off). Keeps prompts instruction-specific, which the recipe's drift "
            "past 300 steps does not; on the held-out suite 0.8 scored lower (bench/RESULTS.md, issue 14)."
        },
    )
    prompt_similarity_weight: float = field(default=1.0, metadata={"help": "Weight of the repulsion penalty."})
    prompt_similarity_tasks: int = field(
        default=4,
        metadata={
            "help": "Other tasks (drawn per step) whose prompts, made without gradient, the step's prompt is "
            "compared with; each costs one short generation of the Prompting LLM."
        },
    )
    tasks_per_step: int = field(
        default=1,
        metadata={
            "help": "Single-task batches (batch_size queries each, each with its task's prompt) whose gradients one "
            "optimiser step averages. More than 1 gives each update several tasks' signal, so weights shared by "
            "every task (W's per-layer deep maps) swing less to the last task trained; a step costs that many "
            "batches. Measured on the deep transfer arm: 2 helped one seed and hurt the other (bench/RESULTS.md)."
        },
    )
    grad_cache_chunk: int = field(
        default=0, metadata={"help": "Queries per chunk for the cached-gradient loss (0: whole batch at once)."}
    )
    document_cache: bool = field(
        default=True, metadata={"help": "Cache plain document embeddings across steps (exact: the backbone is frozen)."}
    )
    document_gradient: bool = field(
        default=True,
        metadata={
            "help": "With prompted documents (model.document_prompt=prompted): send the loss's gradient back through "
            "the documents too. false embeds them with the step's prompt but without gradient, so a step skips "
            "the documents' backward pass and keeps none of their activations; the prompt then learns from the "
            "queries' side alone. No effect on plain documents, which never take a gradient."
        },
    )
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward."})
    steps: int = field(default=300, metadata={"help": "Optimiser steps."})
    precision: Precision = field(default=Precision.FP32, metadata={"help": "fp32 or bf16 autocast."})
    seed: int = field(default=0, metadata={"help": "Seed of data order, initialisation and noise."})
    output_dir: str = field(default="runs/promptembedder", metadata={"help": "Run folder."})
    log_every: int = field(default=10, metadata={"help": "Steps between metric lines."})
    eval_every: int = field(default=100, metadata={"help": "Steps between dev evaluations (0: only at the end)."})
    patience: int = field(
        default=0,
        metadata={
            "help": "Stop once the dev mean MRR@10 has not beaten its best by more than min_delta for this many "
            "dev evaluations in a row (every eval_every steps); 0: run all steps."
        },
    )
    min_delta: float = field(default=0.0, metadata={"help": "Smallest dev gain that counts as an improvement."})
    restore_best: bool = field(
        default=False,
        metadata={
            "help": "Save the weights of the best dev evaluation of this process as the model (as transformers' "
            "load_best_model_at_end) when they beat the last ones; checkpoints keep the last weights for resume."
        },
    )
    checkpoint_every: int = field(default=100, metadata={"help": "Steps between checkpoints."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Checkpoints kept on disk."})

    def __post_init__(self) -> None:
        _check_positive(
            self, "batch_size", "tasks_per_step", "steps", "log_every", "checkpoint_every", "keep_checkpoints"
        )
        _check_positive(self.data, "max_query_length", "max_document_length")
        if self.loss_temperature <= 0:
            raise ConfigError(f"loss_temperature must be > 0, got {self.loss_temperature}")
        for key in ("grad_cache_chunk", "eval_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.data.hard_negatives < 0 or self.data.dev_per_task < 0:
            raise ConfigError("data.hard_negatives and data.dev_per_task must be >= 0")
        rates = (self.optim.alignment_lr, self.optim.gate_lr, self.optim.deep_lr, self.optim.warmup_steps)
        if self.optim.lr <= 0 or min(rates) < 0:
            raise ConfigError(
                "optim.lr must be > 0, optim.alignment_lr, optim.gate_lr, optim.deep_lr and optim.warmup_steps >= 0"
            )
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in [0, 1) (0: no average), got {self.optim.ema_decay}")
        if self.optim.gate_lr and not self.model.prompt_gate:
            raise ConfigError("optim.gate_lr sets the prompt gate's rate: add model.prompt_gate=true, or drop gate_lr")
        if self.optim.deep_lr and not self.model.deep_prompt:
            raise ConfigError("optim.deep_lr sets the deep prompts' rate: add model.deep_prompt=true, or drop deep_lr")
        if self.data.split_seed < -1:
            raise ConfigError(f"data.split_seed must be >= 0, or -1 for the run's seed; got {self.data.split_seed}")
        if self.model.deep_prompt and self.gradient_checkpointing:
            raise ConfigError(
                "model.deep_prompt adds offsets inside layers that gradient checkpointing would recompute without "
                "them: set gradient_checkpointing=false, or model.deep_prompt=false"
            )
        if self.model.deep_prompt and self.method is not Method.PROMPTEMBEDDER:
            raise ConfigError("model.deep_prompt is a PromptEmbedder's W: use it with method 'promptembedder'")
        if self.patience < 0 or self.min_delta < 0:
            raise ConfigError("patience and min_delta must be >= 0")
        if self.patience and not self.eval_every:
            raise ConfigError("patience counts dev evaluations: set eval_every > 0 (say steps/20), or patience=0")
        if self.entropy_floor < 0 or self.entropy_weight < 0:
            raise ConfigError("entropy_floor and entropy_weight must be >= 0")
        frozen_prompter = bool(self.transfer.source) and self.transfer.prompting is TransferPrompting.FROZEN
        if self.entropy_floor and (self.method is not Method.PROMPTEMBEDDER or frozen_prompter):
            raise ConfigError(
                "entropy_floor acts on a Prompting LLM that trains: use it with method 'promptembedder' (and "
                "transfer.prompting=trainable in a transfer, which otherwise freezes it), or set entropy_floor=0"
            )
        if not -1 <= self.prompt_similarity_ceiling <= 1 or self.prompt_similarity_weight < 0:
            raise ConfigError("prompt_similarity_ceiling must be in [-1, 1] (1: off) and prompt_similarity_weight >= 0")
        if self.prompt_similarity_tasks < 1:
            raise ConfigError(f"prompt_similarity_tasks must be >= 1, got {self.prompt_similarity_tasks}")
        if self.prompt_similarity_ceiling < 1 and (self.method is not Method.PROMPTEMBEDDER or frozen_prompter):
            raise ConfigError(
                "prompt_similarity_ceiling acts on a Prompting LLM that trains: use it with method 'promptembedder' "
                "(and transfer.prompting=trainable in a transfer), or set prompt_similarity_ceiling=1"
            )
        if self.prompt_similarity_ceiling < 1 and self.model.conditioning is not Conditioning.INSTRUCTION:
            raise ConfigError(
                "prompt_similarity_ceiling compares one prompt per task: use model.conditioning=instruction, or "
                "set prompt_similarity_ceiling=1"
            )
        if self.speed.pad_instructions_to < 0:
            raise ConfigError(f"speed.pad_instructions_to must be >= 0, got {self.speed.pad_instructions_to}")
        if self.transfer.source and self.method is not Method.PROMPTEMBEDDER:
            raise ConfigError("transfer.source trains a new W for a PromptEmbedder: method must be 'promptembedder'")
        if self.transfer.source and self.prompting_training is not PromptingTraining.FULL:
            raise ConfigError(
                "transfer.source reuses the source's Prompting LLM as it was saved, so prompting_training must "
                "stay 'full' (transfer.prompting=trainable fine-tunes all of it)"
            )
        if self.transfer.source and self.optim.alignment_lr <= 0:
            raise ConfigError("transfer.source trains a new W, so optim.alignment_lr must be > 0")
        if not self.transfer.source and self.transfer.prompting is not TransferPrompting.FROZEN:
            raise ConfigError("transfer.prompting applies to a transfer: set transfer.source too, or drop it")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


# Keys that may change between a checkpoint and its resume without changing what the run computes
# (not steps: the learning-rate schedule depends on it).
RESUMABLE_KEYS = {"output_dir", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"}


def _check_positive(obj: Any, *keys: str) -> None:
    for key in keys:
        value = getattr(obj, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; known keys under {prefix.rstrip('.') or 'the top level'}: "
            + ", ".join(sorted(names))
        )
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = _build(kind, value, f"{prefix}{name}.")
        elif isinstance(kind, type) and issubclass(kind, Enum):
            try:
                kwargs[name] = kind(value)
            except ValueError:
                choices = ", ".join(e.value for e in kind)
                raise ConfigError(f"{prefix}{name}={value!r} is not valid; choose one of: {choices}") from None
        else:
            kwargs[name] = _coerce(value, kind, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check a scalar against its field's type; YAML reads 5e-5 as a string, so numbers are parsed here."""
    if kind is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is str:
        if isinstance(value, str):
            return value
    elif getattr(kind, "__origin__", None) is list:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    else:
        return value
    name = getattr(kind, "__name__", str(kind))
    if kind is str and value is None:  # `--set key=` reads as YAML null; the shell has eaten the quotes of ""
        raise ConfigError(f"{key} is empty (null) but must be a string: for an empty string write {key}='\"\"'")
    raise ConfigError(f"{key}={value!r} must be of type {name}")


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML: numbers, booleans, lists) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = _parse_value(value)
    return data


CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


def packaged_configs() -> list[str]:
    """Names of the configs that ship with the package (``promptembedder train demo``)."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (a path, or the name of a packaged one) and apply ``--set`` overrides; validate."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file() and str(path) in packaged_configs():
            path = CONFIGS_DIR / f"{path}.yaml"
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (packaged configs: {', '.join(packaged_configs())})")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
    data = apply_overrides(data, overrides or [])
    return _build(TrainConfig, data)


def check_inputs(config: TrainConfig) -> None:
    """Everything a config names outside itself (models, training files, a transfer source), checked before
    any model loads: a typo then costs one message, not a minute of loading and a traceback."""
    from promptembedder.data import default_data_dir
    from promptembedder.models.registry import UnknownModelError, check_model_name

    # Under transfer the Prompting LLM is read from the source folder, whatever name it was saved with.
    for key in ("embedding_model",) if config.transfer.source else ("prompting_model", "embedding_model"):
        try:
            check_model_name(getattr(config.model, key), f"model.{key}")
        except UnknownModelError as err:
            raise ConfigError(str(err)) from None
    for entry in config.data.train_files:
        if entry == "sample":
            continue
        path = default_data_dir() / "train" if entry == "built" else Path(entry).expanduser()
        if not path.exists():
            hint = "run `promptembedder data build`" if entry == "built" else "give an existing file or folder"
            raise ConfigError(f"data.train_files: {path} does not exist; {hint}")
    if config.transfer.source and not Path(config.transfer.source).expanduser().exists():
        raise ConfigError(f"transfer.source: {config.transfer.source} does not exist; give a trained model folder")


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    return _build(TrainConfig, data)


def config_differences(a: TrainConfig, b: TrainConfig, ignore: set[str] = RESUMABLE_KEYS) -> list[str]:
    """Dotted keys whose values differ between two configs."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return sorted(k for k in set(fa) | set(fb) if k not in ignore and fa.get(k) != fb.get(k))
