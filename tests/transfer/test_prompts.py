"""Soft prompts that travel: exported from one model, applied through another backbone's W."""

import numpy as np
import pytest
import torch

from promptembedder import PromptEmbedder
from promptembedder.training import Trainer
from promptembedder.transfer import SoftPromptError, SoftPrompts, export_soft_prompts

from tiny import TINY_TASKS, tiny_embedder

INSTRUCTIONS = [instruction for instruction, _ in TINY_TASKS.values()]
TEXTS = ["the red cat runs", "a big dog eats bread", "the old piano", "happy music plays"]


@pytest.fixture(scope="module")
def models(setup, tmp_path_factory):
    """A (the source) and B (transferred from A to a wider backbone), both loaded from their saved folders."""
    out = tmp_path_factory.mktemp("prompts") / "transfer"
    b = PromptEmbedder.from_pretrained(Trainer(setup["config"](out, "compose", "steps=2")).run(), device="cpu")
    return PromptEmbedder.from_pretrained(setup["run"] / "model", device="cpu"), b


def test_prompts_exported_from_a_give_bs_embeddings_exactly(models, tmp_path):
    a, b = models
    export_soft_prompts(a, INSTRUCTIONS + INSTRUCTIONS[:1]).save(tmp_path / "prompts")
    prompts = SoftPrompts.load(tmp_path / "prompts")
    assert prompts.instructions == INSTRUCTIONS and prompts.prompts.shape == (2, 3, 32)
    with torch.no_grad():
        assert torch.equal(prompts[INSTRUCTIONS[1]], b.soft_prompts([INSTRUCTIONS[1]])[0])
    travelled = prompts.attach(b)
    assert travelled.alignment is b.alignment and travelled.embedding is b.embedding
    for instruction in INSTRUCTIONS:
        np.testing.assert_array_equal(
            travelled.encode(TEXTS, instruction=instruction, batch_size=3),
            b.encode(TEXTS, instruction=instruction, batch_size=3),
        )
    # Also under A's own W: the same prompts serve every backbone.
    np.testing.assert_array_equal(
        prompts.attach(a).encode(TEXTS, instruction=INSTRUCTIONS[0]), a.encode(TEXTS, instruction=INSTRUCTIONS[0])
    )
    with pytest.raises(KeyError, match="no stored soft prompt for the instruction 'classify the news'"):
        travelled.encode(TEXTS, instruction="classify the news")


def test_prompts_from_another_prompting_llm_are_refused(models):
    a, _ = models
    other = tiny_embedder("llama", num_soft_tokens=3)  # same widths, but an untrained Prompting LLM
    prompts = export_soft_prompts(other, INSTRUCTIONS)
    with pytest.raises(SoftPromptError, match="written by a Prompting LLM with fingerprint"):
        prompts.attach(a)
    assert prompts.attach(a, check_prompting=False).encode(TEXTS, instruction=INSTRUCTIONS[0]).shape == (4, 48)
    narrow = SoftPrompts(INSTRUCTIONS, torch.zeros(2, 3, 16), prompts.prompting_fingerprint)
    with pytest.raises(SoftPromptError, match="width mismatch: these soft prompts are 16 wide .* takes 32"):
        narrow.attach(a)


def test_per_text_conditioning_has_no_per_task_prompts(tmp_path):
    with pytest.raises(SoftPromptError, match="only conditioning='instruction'"):
        export_soft_prompts(tiny_embedder("llama", conditioning="instruction+text"), INSTRUCTIONS)
    with pytest.raises(SoftPromptError, match="not a soft prompts folder"):
        SoftPrompts.load(tmp_path)
