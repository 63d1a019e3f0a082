"""Loads the real packaged models (prepared once into the cache, reused by later runs)."""

import numpy as np
import pytest
import torch

from promptembedder import PromptEmbedder
from promptembedder.models import is_prepared, prepare

pytestmark = pytest.mark.real_models

PAIRS = [
    ("A man is playing a guitar.", "A person plays an acoustic guitar."),
    ("The stock market fell sharply today.", "Share prices dropped steeply on the exchange today."),
    ("How do I bake sourdough bread at home?", "What is a good recipe for homemade sourdough loaves?"),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
]


@pytest.fixture(scope="module")
def model():
    for name in ("smollm2-135m", "gemma3-270m"):
        prepare(name)
        assert is_prepared(name)
    return PromptEmbedder.from_models(prompting_model="smollm2-135m", embedding_model="gemma3-270m", device="cpu")


def test_paraphrases_score_higher_than_unrelated_sentences(model):
    texts = [t for pair in PAIRS for t in pair]
    vectors = model.encode(texts, instruction="Retrieve a sentence that has the same meaning as the given sentence")
    assert vectors.shape == (8, 640)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    pair_of = np.arange(len(texts)) // 2
    same = sims[pair_of[:, None] == pair_of[None, :]]
    same = same[same < 0.9999]  # drop the diagonal
    unrelated = sims[pair_of[:, None] != pair_of[None, :]]
    assert same.mean() > unrelated.mean() + 0.15
    for i in range(len(PAIRS)):
        assert sims[2 * i, 2 * i + 1] > np.median(unrelated)


def test_round_trip_through_a_saved_folder(model, tmp_path):
    text, instruction = ["A kitten naps on the couch."], "Find similar sentences"
    expected = model.encode(text, instruction=instruction)
    restored = PromptEmbedder.from_pretrained(model.save_pretrained(tmp_path / "pe"), device="cpu")
    saved, loaded = model.state_dict(), restored.state_dict()
    assert saved.keys() == loaded.keys()
    for key in saved:
        assert torch.equal(saved[key], loaded[key]), key
    # Same weights; oneDNN may pick other kernels for differently laid-out buffers: last-bit differences only.
    np.testing.assert_allclose(restored.encode(text, instruction=instruction), expected, atol=1e-5)
