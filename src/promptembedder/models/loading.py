"""Load a backbone (model + tokenizer) for either role from a short name, a folder or a hub id."""

from __future__ import annotations

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from promptembedder.models.registry import ModelLoadError, resolve

RANDOM_PREFIX = "random:"
"""``random:FOLDER``: the architecture in FOLDER/config.json with freshly initialised weights (and FOLDER's
tokenizer). Speed and memory depend on shapes only, so real-size models can be measured without weights."""


def _from_pretrained(auto_class, name: str, location: str, **kwargs):
    """``auto_class.from_pretrained`` with a message that says what to do when the location holds no model
    (offline, a hub id cannot be fetched; a folder may hold something else)."""
    try:
        return auto_class.from_pretrained(location, **kwargs)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"could not load a model from {name!r} ({first}). Give a known short name "
            "(`promptembedder models list`), a local Hugging Face model folder, or, with internet, a hub id."
        ) from None


def _random_weights(name: str, auto_class, dtype: torch.dtype | None, device) -> PreTrainedModel:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name[len(RANDOM_PREFIX) :])
    # Built directly on the target device: initialising 7B parameters there takes a second, on a CPU minutes.
    with torch.device(device or "cpu"):
        model = auto_class.from_config(config, dtype=dtype or default_dtype(device))
    return model.eval()


def default_dtype(device: torch.device | str | None) -> torch.dtype:
    """bf16 on accelerators, fp32 on the CPU (where bf16 matmuls are slow and imprecise)."""
    return torch.float32 if device is None or torch.device(device).type == "cpu" else torch.bfloat16


def load_tokenizer(name_or_path: str, *, allow_install: bool = True) -> PreTrainedTokenizerBase:
    if name_or_path.startswith(RANDOM_PREFIX):
        # The folder's tokenizer.json as is: AutoTokenizer would pick the architecture's own tokenizer class
        # (from config.json), which rebuilds its pipeline and may not read a stand-in tokenizer.
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(name_or_path[len(RANDOM_PREFIX) :])
    else:
        tokenizer = _from_pretrained(AutoTokenizer, name_or_path, resolve(name_or_path, allow_install=allow_install))
    if tokenizer.pad_token_id is None:
        # Padding is masked out everywhere, so any real token id will do.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_causal_lm(
    name_or_path: str, *, dtype: torch.dtype | None = None, device: str | torch.device | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A language model with its head: the Prompting LLM needs next-token logits."""
    if name_or_path.startswith(RANDOM_PREFIX):
        return _random_weights(name_or_path, AutoModelForCausalLM, dtype, device), load_tokenizer(name_or_path)
    location = resolve(name_or_path)
    model = _from_pretrained(AutoModelForCausalLM, name_or_path, location, dtype=dtype or default_dtype(device))
    return model.to(device or "cpu"), load_tokenizer(name_or_path)


def load_base_model(
    name_or_path: str, *, dtype: torch.dtype | None = None, device: str | torch.device | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The transformer without its head: the Embedding LLM only needs hidden states."""
    if name_or_path.startswith(RANDOM_PREFIX):
        return _random_weights(name_or_path, AutoModel, dtype, device), load_tokenizer(name_or_path)
    location = resolve(name_or_path)
    model = _from_pretrained(AutoModel, name_or_path, location, dtype=dtype or default_dtype(device))
    return model.to(device or "cpu"), load_tokenizer(name_or_path)
