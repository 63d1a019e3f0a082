"""Transfer to a new Embedding LLM: keep the trained Prompting LLM frozen, train only a new alignment map W.

(``transfer.prompting=trainable`` fine-tunes the source's Prompting LLM with the new W instead: a warm start
that costs what a from-scratch step costs.)

Because the Prompting LLM does not change, its soft prompts (before alignment) are the same whatever the
backbone; a new backbone only needs a new linear map from the Prompting LLM's input space into its own.
That map can start from

- ``vocab``:   the least-squares anchor fit between the Prompting LLM's and the new backbone's vocabulary
               embeddings (what a fresh PromptEmbedder starts from);
- ``random``:  nn.Linear's default initialisation;
- ``compose``: the trained W followed by a least-squares map M from the old backbone's input space to the
               new one's, fitted on the tokens the two backbones' vocabularies share: x -> (x W_old + b_old) M + c;
- ``mixture``: ``vocab`` plus a mixture table (see :class:`~promptembedder.alignment.AlignmentMap`): the weight a
               soft token puts on a shared token lands on the new backbone's own row for it, and W learns only a
               correction. The prompts are token mixtures, so this carries them however badly a linear map
               carries words between the two vocabularies.

Everything here is used by :class:`promptembedder.training.Trainer` when ``config.transfer.source`` is set.
"""

from __future__ import annotations

import copy
import inspect
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from promptembedder.alignment import AlignmentMap, anchor_fit
from promptembedder.config import AlignmentInit, PromptEmbedderConfig
from promptembedder.embedder import (
    ALIGNMENT_NAME,
    CONFIG_NAME,
    PROMPTING_DIR,
    NotAPromptEmbedderError,
    PromptEmbedder,
    weights_fingerprint,
)
from promptembedder.prompting import PromptingLLM
from promptembedder.training.config import ConfigError, TrainConfig, TransferInit, TransferPrompting

logger = logging.getLogger(__name__)

# The fields of a PromptEmbedderConfig that decide what the Prompting LLM writes. A transfer takes them from
# the source: the soft prompts are only the trained ones if they are generated exactly as in training.
PROMPTING_FIELDS = (
    "prompting_model",
    "num_soft_tokens",
    "relaxation",
    "temperature",
    "conditioning",
    "instruction_max_length",
)


class TransferError(ConfigError):
    """A transfer that cannot start: no trained source model, a width mismatch, a backbone without inputs_embeds."""


# --------------------------------------------------------------------------- the source


def resolve_source(path: str | Path) -> Path:
    """The saved PromptEmbedder folder behind ``path``: the folder itself, or a run folder's ``model/``."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise TransferError(f"transfer source {folder} does not exist: expected a saved PromptEmbedder or a run folder")
    if (folder / CONFIG_NAME).is_file():
        model_dir = folder
    elif (folder / "model" / CONFIG_NAME).is_file():
        model_dir = folder / "model"
    elif (folder / "checkpoints").is_dir() or (folder / "config.json").is_file():
        raise TransferError(
            f"{folder} is a training run without a finished model: {folder / 'model' / CONFIG_NAME} is missing. "
            "Let the run finish (promptembedder train CONFIG --resume) or point --from at a saved PromptEmbedder."
        )
    else:
        raise TransferError(
            f"{folder} holds no trained PromptEmbedder: neither {folder / CONFIG_NAME} nor "
            f"{folder / 'model' / CONFIG_NAME} exists. Point --from at a saved model or a finished run folder."
        )
    try:
        PromptEmbedder.read_metadata(model_dir)
    except NotAPromptEmbedderError as err:
        raise TransferError(f"transfer source: {err}") from None
    return model_dir


def prepare_transfer_config(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` whose Prompting-LLM settings are the source's; checks that the run can start.

    Settings that differ from the source's are replaced (with a warning): a Prompting LLM trained to write
    K=5 softmax-relaxed vectors must keep doing exactly that for its soft prompts to stay the trained ones.
    """
    source = resolve_source(config.transfer.source)
    recorded = PromptEmbedder.read_metadata(source)["config"]
    out = copy.deepcopy(config)
    out.transfer.source = str(source)
    output = Path(out.output_dir).expanduser().resolve()
    if output == source.resolve() or output in source.resolve().parents:
        raise TransferError(
            f"output_dir {out.output_dir} would overwrite the transfer source {source}; "
            "choose another folder (--set output_dir=...)"
        )
    theirs = PromptEmbedderConfig.from_dict(recorded)
    for name in PROMPTING_FIELDS:
        mine, source_value = getattr(out.model, name), getattr(theirs, name)
        if mine != source_value:
            logger.warning(
                "transfer: model.%s=%r replaced by the source's %r (the Prompting LLM is reused unchanged)",
                name,
                getattr(mine, "value", mine),
                getattr(source_value, "value", source_value),
            )
            setattr(out.model, name, source_value)
    return out


# --------------------------------------------------------------------------- checks


def check_takes_inputs_embeds(model: nn.Module, name: str) -> None:
    """Raise a TransferError unless ``model`` can read a soft prompt: input embeddings and ``inputs_embeds``."""
    try:
        embeddings = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        embeddings = None
    takes = "inputs_embeds" in inspect.signature(model.forward).parameters
    if embeddings is None or not isinstance(embeddings, nn.Embedding) or not takes:
        raise TransferError(
            f"{name} ({type(model).__name__}) cannot take inputs_embeds, so it cannot read a soft prompt; "
            "choose a text transformer (decoder or encoder) whose forward accepts inputs_embeds"
        )


# --------------------------------------------------------------------------- the frozen Prompting LLM


class FrozenPromptingLLM(PromptingLLM):
    """A trained Prompting LLM that no longer learns.

    No gradients, eval mode whatever the caller's mode (no Gumbel noise, no dropout), so each instruction's
    soft prompt is a constant: it is computed once and remembered, which makes a transfer step cheaper than a
    from-scratch step by the Prompting LLM's whole forward and backward pass.
    """

    max_remembered = 4096
    max_remembered_weights = 256

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._freeze()

    def _freeze(self) -> None:
        self.model.requires_grad_(False)
        self._remembered: dict[tuple[str, ...], tuple[Tensor, Tensor, Tensor]] = {}
        super().train(False)

    @classmethod
    def freeze(cls, prompting: PromptingLLM) -> FrozenPromptingLLM:
        """Freeze ``prompting`` in place; it keeps every option it was built with (a new class, same state)."""
        prompting.__class__ = cls
        prompting._freeze()
        return prompting

    def train(self, mode: bool = True) -> FrozenPromptingLLM:
        return super().train(False)

    def forward(
        self, texts: list[str], *, return_entropy: bool = False, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, ...]:
        key = (return_weights, *texts)  # mixture weights (B, K, V) are kept only for the models that read them
        made = self._remembered.get(key)  # one lookup: another thread may clear the dict at any moment
        if made is None:
            # Normal tensors even when called under inference_mode (encode): a remembered prompt is fed to
            # the trainable W later, and autograd cannot save an inference tensor for backward.
            with torch.inference_mode(False), torch.no_grad():
                made = tuple(t.detach() for t in super().forward(texts, return_weights=True))
            if not return_weights:  # a new empty tensor: a view would keep the whole (B, K, V) alive
                made = (*made[:2], made[2].new_empty((*made[2].shape[:-1], 0)))
            # Entries with weights are ~1 MB per prompt, so fewer of them are kept before starting afresh.
            if len(self._remembered) >= (self.max_remembered_weights if return_weights else self.max_remembered):
                self._remembered.clear()
            self._remembered[key] = made
        if return_weights:
            return made
        return made[:2] if return_entropy else made[0]


# --------------------------------------------------------------------------- initialising the new W


@torch.no_grad()
def fit_backbone_map(
    old_model: PreTrainedModel,
    old_tokenizer: PreTrainedTokenizerBase,
    new_model: PreTrainedModel,
    new_tokenizer: PreTrainedTokenizerBase,
    *,
    bias: bool = True,
) -> tuple[Tensor, Tensor, int]:
    """M (d_old, d_new), c (d_new) and the anchor count of the least-squares map between two input spaces."""
    old_ids, _, _, _, m, c = anchor_fit(
        old_model,
        old_tokenizer,
        new_model,
        new_tokenizer,
        bias=bias,
        error=TransferError,
        hint="these are the old and the new Embedding LLM's: use transfer.init=vocab or random for this pair",
    )
    return m, c, len(old_ids)


@torch.no_grad()
def compose_alignment(alignment: AlignmentMap, old_state: dict[str, Tensor], m: Tensor, c: Tensor) -> None:
    """Set ``alignment`` to x -> (x W_old + b_old) M + c, i.e. weight = M^T W_old, bias = b_old M + c."""
    old_weight = old_state["linear.weight"].float().cpu()  # nn.Linear layout: (d_old, d_p)
    weight = m.T @ old_weight
    if weight.shape != alignment.linear.weight.shape:
        raise TransferError(
            f"width mismatch: the composed map is {weight.shape[1]}->{weight.shape[0]} but the new alignment map "
            f"is {alignment.in_features}->{alignment.out_features}"
        )
    alignment.linear.weight.copy_(weight.to(alignment.linear.weight))
    old_bias = old_state.get("linear.bias")
    if alignment.linear.bias is not None:
        bias = c + (old_bias.float().cpu() @ m if old_bias is not None else 0.0)
        alignment.linear.bias.copy_(bias.to(alignment.linear.bias))
    elif old_bias is not None and old_bias.abs().max() > 0:
        raise TransferError(
            "transfer.init=compose carries the trained W's bias over, but model.alignment_bias is false; "
            "set model.alignment_bias=true or use transfer.init=vocab"
        )


def _compose_from_source(model: PromptEmbedder, source: Path, meta: dict) -> int:
    """Load the source's W and its Embedding LLM, fit old -> new on shared tokens, and compose."""
    from promptembedder.models import load_base_model

    old_state = load_file(str(source / ALIGNMENT_NAME))
    recorded = meta["embedding_model"]
    expected = (recorded["hidden_size"], model.prompting.hidden_size)
    if tuple(old_state["linear.weight"].shape) != expected:
        raise TransferError(
            f"width mismatch: {source / ALIGNMENT_NAME} holds a {tuple(old_state['linear.weight'].shape)} weight, "
            f"expected {expected} (Embedding LLM width, Prompting LLM width)"
        )
    old_model, old_tokenizer = load_base_model(recorded["name"], device="cpu")
    found = weights_fingerprint(old_model)
    if found != recorded["fingerprint"]:
        raise TransferError(
            f"transfer.init=compose needs the source's Embedding LLM {recorded['name']!r} as it was trained against "
            f"(fingerprint {recorded['fingerprint']}), but found fingerprint {found}; use transfer.init=vocab"
        )
    m, c, anchors = fit_backbone_map(
        old_model,
        old_tokenizer,
        model.embedding.model,
        model.embedding.tokenizer,
        bias=model.alignment.linear.bias is not None,
    )
    del old_model
    compose_alignment(model.alignment, old_state, m, c)
    return anchors


# --------------------------------------------------------------------------- the model to train


def build_transfer_model(config: TrainConfig, *, device: str | torch.device | None = None) -> PromptEmbedder:
    """The source's Prompting LLM (frozen unless transfer.prompting=trainable), the new Embedding LLM (frozen)
    and a new W initialised per config.

    Every check (the source, the new backbone's ``inputs_embeds``, the widths) runs here, before training.
    """
    from promptembedder.models import load_base_model, load_causal_lm

    source = resolve_source(config.transfer.source)
    meta = PromptEmbedder.read_metadata(source)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = config.model.embedding_model
    backbone, backbone_tokenizer = load_base_model(name, device=device)
    check_takes_inputs_embeds(backbone, name)
    lm, lm_tokenizer = load_causal_lm(str(source / PROMPTING_DIR), device=device)
    width = lm.get_input_embeddings().embedding_dim
    if meta.get("prompting_hidden_size") not in (None, width):
        raise TransferError(
            f"width mismatch: {source / PROMPTING_DIR} is {width} wide but {source / CONFIG_NAME} records "
            f"{meta['prompting_hidden_size']}; the save is inconsistent"
        )
    build_config = copy.deepcopy(config.model)
    build_config.alignment_init = AlignmentInit.RANDOM  # W (and any table) is set below, by transfer.init
    build_config.mixture_table = False
    model = PromptEmbedder.from_modules(build_config, lm, lm_tokenizer, backbone, backbone_tokenizer, seed=config.seed)
    model.config = copy.deepcopy(config.model)
    frozen = config.transfer.prompting is TransferPrompting.FROZEN
    if frozen:
        model.prompting = FrozenPromptingLLM.freeze(model.prompting)
    init = config.transfer.init
    table = init is TransferInit.MIXTURE or config.model.mixture_table
    model.config.mixture_table = table  # saved with the model, so every load rebuilds the table
    fit = init in (TransferInit.VOCAB, TransferInit.MIXTURE)
    if fit or table:  # one anchor fit for W and the table alike
        model.alignment.fit_vocabularies(lm, lm_tokenizer, backbone, backbone_tokenizer, weights=fit, table=table)
    if init is TransferInit.COMPOSE:
        model.alignment.num_anchors = _compose_from_source(model, source, meta)
    logger.info(
        "transfer from %s to %s: W %d->%d (%s init), Prompting LLM %s",
        source,
        name,
        model.alignment.in_features,
        model.alignment.out_features,
        init.value,
        "frozen" if frozen else "trainable (warm start)",
    )
    return model.eval()


__all__ = [
    "PROMPTING_FIELDS",
    "FrozenPromptingLLM",
    "TransferError",
    "build_transfer_model",
    "check_takes_inputs_embeds",
    "compose_alignment",
    "fit_backbone_map",
    "prepare_transfer_config",
    "resolve_source",
]
