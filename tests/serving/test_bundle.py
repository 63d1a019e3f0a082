"""Task bundles: export, load without the Prompting LLM, with it, and what is refused."""

import json
import os

import numpy as np
import pytest
import torch

from promptembedder.serving import BundleError, export_bundle, load_bundle, load_servable, read_tasks
from promptembedder.serving.bundle import BUNDLE_NAME, TASK_PROMPTS_NAME
from promptembedder.serving.config import ServeConfig
from promptembedder.serving.service import EmbeddingService
from promptembedder.transfer import SoftPromptError, SoftPrompts

from tiny import tiny_embedder

TASKS = {
    "animals": "find the sentence about the same animal",
    "music": "find the sentence about the same instrument",
}
TEXTS = ["the red cat runs", "a big dog eats bread", "the old piano", "happy music plays", "water"]


def _embed(servable, instruction, texts=TEXTS):
    return EmbeddingService(servable, ServeConfig()).embed(instruction, texts)


def test_a_bundle_holds_the_tasks_and_serves_them_without_the_prompting_llm(saved, reference):
    meta = json.loads((saved["bundle"] / BUNDLE_NAME).read_text())
    assert meta["tasks"] == TASKS and meta["embedding_model"]["fingerprint"] == reference.embedding_fingerprint()
    servable = load_bundle(saved["bundle"], device="cpu")
    assert servable.model is None and servable.tasks == TASKS
    for instruction in TASKS.values():
        with torch.no_grad():
            expected_prompt = reference.prompt_for([], instruction)
        assert torch.equal(servable.task_prompts[instruction], expected_prompt)
        np.testing.assert_allclose(
            _embed(servable, instruction), reference.encode(TEXTS, instruction=instruction), atol=1e-6
        )
    np.testing.assert_allclose(_embed(servable, None), reference.encode(TEXTS), atol=1e-6)
    # The prompts before alignment travel as transfer.SoftPrompts.
    soft = SoftPrompts.load(saved["bundle"] / "soft_prompts")
    assert soft.instructions == list(TASKS.values())


def test_given_its_prompting_llm_a_bundle_serves_new_instructions(saved, reference):
    servable = load_bundle(saved["bundle"], prompting=saved["model"], device="cpu")
    assert servable.model is not None
    new = "retrieve the same topic"
    np.testing.assert_allclose(_embed(servable, new), reference.encode(TEXTS, instruction=new), atol=1e-6)


def test_a_bundle_refuses_a_prompting_llm_its_w_was_not_trained_with(saved, tmp_path):
    other = tiny_embedder("gemma", num_soft_tokens=3)
    with torch.no_grad():
        for p in other.prompting.parameters():
            p.add_(0.01)
    other.prompting.model.save_pretrained(tmp_path / "lm")
    other.prompting.tokenizer.save_pretrained(tmp_path / "lm")
    with pytest.raises(BundleError, match="is not the one this bundle's W was trained with"):
        load_bundle(saved["bundle"], prompting=tmp_path / "lm", device="cpu")


def test_a_bundle_refuses_another_embedding_llm(saved, tmp_path):
    from tiny import tiny_embedding_model

    model, tokenizer = tiny_embedding_model("gemma", seed=5)
    model.save_pretrained(tmp_path / "other")
    tokenizer.save_pretrained(tmp_path / "other")
    with pytest.raises(BundleError, match="is not the one this bundle was exported for"):
        load_bundle(saved["bundle"], embedding_model=str(tmp_path / "other"), device="cpu")
    with pytest.raises(BundleError, match="could not be loaded"):
        load_bundle(saved["bundle"], embedding_model=str(tmp_path / "nowhere"), device="cpu")


def test_export_refuses_per_text_prompts_and_a_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(SoftPromptError, match="one soft prompt per text"):
        export_bundle(tiny_embedder("gemma", conditioning="instruction+text"), TASKS, tmp_path / "b")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="is not a task bundle"):
        export_bundle(tiny_embedder("gemma"), TASKS, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_export_again_replaces_the_bundle_whole(saved, reference, tmp_path):
    out = export_bundle(reference, {"one": "find the same animal"}, tmp_path / "b")
    export_bundle(reference, {"two": "find the same song"}, out)
    assert json.loads((out / BUNDLE_NAME).read_text())["tasks"] == {"two": "find the same song"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    mask = os.umask(0)
    os.umask(mask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~mask  # not mkdtemp's owner-only mode: a bundle gets deployed
    assert ((out / TASK_PROMPTS_NAME).stat().st_mode & 0o777) == 0o666 & ~mask


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n- b\n", "must be a non-empty mapping"),
        ("{}", "must be a non-empty mapping"),
        ("search: ''\n", "instruction of task 'search' must be a non-empty string"),
        ("1: find\n", "task name 1"),
        ("search: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_tasks_file_is_refused_with_what_is_wrong(tmp_path, text, match):
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    with pytest.raises(BundleError, match=match):
        read_tasks(path)
    with pytest.raises(BundleError, match="does not exist"):
        read_tasks(tmp_path / "missing.yaml")


def test_load_servable_tells_a_bundle_from_a_model_and_refuses_anything_else(saved, tmp_path):
    assert load_servable(saved["model"], tasks=TASKS, device="cpu").model is not None
    with pytest.raises(BundleError, match="neither a task bundle"):
        load_servable(tmp_path, device="cpu")
    with pytest.raises(BundleError, match="serves the tasks it was exported with"):
        load_servable(saved["bundle"], tasks=TASKS, device="cpu")
    with pytest.raises(BundleError, match="--prompting is for a bundle"):
        load_servable(saved["model"], prompting=saved["model"], device="cpu")


def test_a_gated_model_is_served_blended_as_it_encodes(tmp_path):
    """prompt_gate: the server blends the prompted vector with the plain one by the learned g, from a bundle
    without the Prompting LLM (g read from its alignment file) and from the model itself."""
    from promptembedder import PromptEmbedder
    from promptembedder.serving.bundle import servable_model

    from tiny import save_tiny_pair

    prompting, embedding = save_tiny_pair(tmp_path, kind="gemma")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", prompt_gate=True)
    with torch.no_grad():
        model.alignment.gate.fill_(0.3)
    bundle = load_bundle(export_bundle(model, TASKS, tmp_path / "bundle"), device="cpu")
    assert float(bundle.gate) == pytest.approx(0.3)
    for servable in (bundle, servable_model(model, TASKS)):
        for instruction in TASKS.values():
            expected = model.encode(TEXTS, instruction=instruction)
            np.testing.assert_allclose(_embed(servable, instruction), expected, atol=1e-6)
            assert not np.allclose(expected, model.encode(TEXTS), atol=1e-4)


def test_a_deep_prompt_model_is_served_from_a_bundle_as_it_encodes(tmp_path):
    """deep_prompt: a bundle stores the aligned prompt with its deep rows, and the server's Embedding LLM adds
    them inside the layers as the model's own encode does, without the Prompting LLM."""
    from promptembedder import PromptEmbedder

    from tiny import save_tiny_pair

    prompting, embedding = save_tiny_pair(tmp_path, kind="gemma")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", deep_prompt=True)
    with torch.no_grad():
        model.alignment.deep.normal_(0, 0.05)
    bundle = load_bundle(export_bundle(model, TASKS, tmp_path / "bundle"), device="cpu")
    assert bundle.embedding.deep_layers == model.embedding.deep_layers > 0
    for instruction in TASKS.values():
        np.testing.assert_allclose(_embed(bundle, instruction), model.encode(TEXTS, instruction=instruction), atol=1e-6)
