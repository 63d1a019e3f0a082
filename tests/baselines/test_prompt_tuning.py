import numpy as np
import pytest
import torch

from promptembedder import PromptEmbedder
from promptembedder.baselines import PromptTuningEmbedder, load_pretrained
from promptembedder.baselines.prompt_tuning import _key
from promptembedder.config import PromptEmbedderConfig
from promptembedder.evaluation.baselines import PromptEmbedderEncoder, load_encoder
from promptembedder.prompting import vocabulary_embeddings
from promptembedder.training import Trainer

from tiny import TINY_TASKS

ANIMALS, MUSIC = TINY_TASKS["animals"][0], TINY_TASKS["music"][0]
TEXTS = ["the red cat", "a big dog runs", "the old bird eats bread"]


@pytest.fixture
def tuned(tiny_setup):
    config = PromptEmbedderConfig(
        prompting_model="unused", embedding_model=tiny_setup[2], max_length=32, num_soft_tokens=3
    )
    return PromptTuningEmbedder.from_config(config, instructions=[ANIMALS, MUSIC], device="cpu")


def test_one_prompt_per_instruction_starts_from_its_first_tokens(tuned):
    vocab = vocabulary_embeddings(tuned.embedding.model)
    ids = tuned.embedding.tokenizer(ANIMALS, add_special_tokens=False)["input_ids"][:3]
    torch.testing.assert_close(tuned.prompts[_key(ANIMALS)].detach(), vocab[ids])
    assert set(tuned.trainable_parameters()) == {f"prompts.{_key(ANIMALS)}", f"prompts.{_key(MUSIC)}"}
    assert not any(p.requires_grad for p in tuned.embedding.model.parameters())


def test_the_prompt_sits_where_a_promptembedder_prompt_sits(tuned):
    with torch.no_grad():
        want = tuned.embedding(TEXTS, prefix=tuned.prompts[_key(ANIMALS)])
        torch.testing.assert_close(tuned(TEXTS, ANIMALS), want)
        # Documents are plain by default: the frozen backbone's own embedding, instruction ignored.
        torch.testing.assert_close(tuned.embed_documents(TEXTS, ANIMALS), tuned.embedding(TEXTS))


def test_an_unseen_instruction_gets_the_mean_prompt(tuned):
    mean = (tuned.prompts[_key(ANIMALS)] + tuned.prompts[_key(MUSIC)]).detach() / 2
    torch.testing.assert_close(tuned.prompt_for("classify the song").detach(), mean)


def test_plain_documents_share_a_promptembedders_document_cache(tuned, tiny_setup):
    config = PromptEmbedderConfig(prompting_model=tiny_setup[1], embedding_model=tiny_setup[2], max_length=32)
    pe = PromptEmbedder.from_config(config, device="cpu")
    a = PromptEmbedderEncoder(tuned, "pt").document_fingerprint()
    assert a is not None and a == PromptEmbedderEncoder(pe, "pe").document_fingerprint()


def test_save_load_and_eval_reproduce_embeddings(tuned, tmp_path):
    with torch.no_grad():
        tuned.prompts[_key(MUSIC)].add_(0.5)
    before = tuned.encode(TEXTS, instruction=MUSIC)
    path = tuned.save_pretrained(tmp_path / "pt")
    loaded = load_pretrained(path, device="cpu")
    assert isinstance(loaded, PromptTuningEmbedder) and loaded.fingerprint() == tuned.fingerprint()
    np.testing.assert_allclose(loaded.encode(TEXTS, instruction=MUSIC), before, atol=1e-6)
    np.testing.assert_allclose(load_encoder(str(path), device="cpu").encode_queries(TEXTS, MUSIC), before, atol=1e-6)


def test_the_trainer_learns_one_prompt_per_task_and_nothing_else(make_config, tmp_path):
    config = make_config(tmp_path / "run", "method=prompt-tuning", "optim.lr=0.01", "steps=6")
    trainer = Trainer(config)
    trained = load_pretrained(trainer.run(), device="cpu")
    fresh = PromptTuningEmbedder.from_config(config.model, instructions=trainer.instructions, device="cpu")
    assert sorted(trained.instructions) == sorted([ANIMALS, MUSIC])
    for name, p in fresh.trainable_parameters().items():
        assert not torch.equal(p, trained.trainable_parameters()[name]), name
    for a, b in zip(fresh.embedding.model.parameters(), trained.embedding.model.parameters(), strict=True):
        assert torch.equal(a, b)
