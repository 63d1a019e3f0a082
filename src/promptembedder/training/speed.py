"""Apply a TrainConfig's speed options (and gradient checkpointing) to a freshly built model.

Every option here is exact: it changes how a step is computed, not what (up to float rounding); each has a
test on tiny models comparing it with the plain computation.
"""

from __future__ import annotations

import logging

from promptembedder.embedding import enable_checkpointing
from promptembedder.prompting import PromptingLLM
from promptembedder.training.config import CompileMode, TrainConfig

logger = logging.getLogger(__name__)


def apply_speed_options(model, config: TrainConfig) -> None:
    """Configure ``model`` (a PromptEmbedder or a baseline) in place as ``config.speed`` says."""
    speed = config.speed
    prompting = getattr(model, "prompting", None)
    if isinstance(prompting, PromptingLLM):
        prompting.kv_cache = speed.kv_cache
        prompting.factored_vocab_grad = speed.factored_vocab_grad
        prompting.pad_to_multiple_of = speed.pad_instructions_to or None
    if config.gradient_checkpointing:
        # Wherever activations are kept for backward: the Prompting LLM, and the Embedding LLM (queries and
        # prompted documents backpropagate through it into the soft prompt; a LoRA backbone trains itself).
        if isinstance(prompting, PromptingLLM) and any(p.requires_grad for p in prompting.parameters()):
            enable_checkpointing(prompting.model)
        model.embedding.enable_gradient_checkpointing()
    if speed.compile is not CompileMode.NONE:
        mode = None if speed.compile is CompileMode.DEFAULT else speed.compile.value
        if speed.compile_backend != "inductor":
            mode = None  # modes are inductor's; other backends (cudagraphs, aot_eager) take none
        if isinstance(prompting, PromptingLLM):
            prompting.compile_generation(mode=mode, backend=speed.compile_backend)
        if speed.compile_backbone:  # the transformer only: tokenisation, layout and pooling stay eager
            model.embedding.model.compile(mode=mode, backend=speed.compile_backend)
        logger.info("torch.compile mode=%s backend=%s backbone=%s", mode, speed.compile_backend, speed.compile_backbone)
