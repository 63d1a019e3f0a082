"""A saved PromptEmbedder loads in sentence-transformers and gives the vectors of our own encode."""

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from promptembedder import PromptEmbedder

from tiny import save_tiny_pair

TEXTS = ["the cat plays", "a dog eats bread", "stocks fell as the market price rose", "the king reads"]
QUERY = "find the sentence about the same animal"
DOCUMENT = "a passage about animals"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("st")
    prompting, embedding = save_tiny_pair(folder, kind="gemma")
    model = PromptEmbedder.from_models(
        prompting, embedding, num_soft_tokens=3, device="cpu", max_length=64, document_prompt="prompted"
    )
    with torch.no_grad():  # a trained model's weights differ from the pretrained ones
        for p in model.prompting.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.config.prompts = {"query": QUERY, "document": DOCUMENT, "animals": QUERY}
    path = model.save_pretrained(folder / "saved")
    return model, path


def test_a_saved_folder_loads_offline_and_encodes_as_our_encode(saved):
    ours, path = saved
    st = SentenceTransformer(str(path), trust_remote_code=True, device="cpu", local_files_only=True)
    assert st.get_embedding_dimension() == ours.get_sentence_embedding_dimension()
    with_prompt = st.encode(TEXTS, prompt=QUERY)
    np.testing.assert_allclose(with_prompt, ours.encode(TEXTS, instruction=QUERY), atol=1e-5)
    # the prompt is the soft prompt, not text in front of the input
    assert not np.allclose(with_prompt, ours.encode([QUERY + t for t in TEXTS]), atol=1e-3)
    np.testing.assert_allclose(st.encode(TEXTS, prompt_name="animals"), ours.encode(TEXTS, prompt_name="animals"))
    np.testing.assert_allclose(st.encode_query(TEXTS), ours.encode(TEXTS, instruction=QUERY), atol=1e-5)
    documents = ours.encode_documents(TEXTS, DOCUMENT)
    np.testing.assert_allclose(st.encode_document(TEXTS), documents, atol=1e-5)
    np.testing.assert_allclose(ours.encode_document(TEXTS), documents, atol=1e-5)
    np.testing.assert_allclose(st.encode(TEXTS), ours.encode(TEXTS), atol=1e-5)  # no prompt: no soft prompt


def test_quantise_truncate_and_similarity_as_sentence_transformers_does(saved):
    ours, path = saved
    st = SentenceTransformer(str(path), trust_remote_code=True, device="cpu", local_files_only=True)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        a = st.encode(TEXTS, prompt=QUERY, precision=precision)
        b = ours.encode(TEXTS, prompt=QUERY, precision=precision)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.mean(a == b) > 0.99, precision  # float rounding may move a value across a bucket edge
    a = st.encode(TEXTS, prompt=QUERY, truncate_dim=16, normalize_embeddings=True)
    np.testing.assert_allclose(a, ours.encode(TEXTS, prompt=QUERY, truncate_dim=16), atol=1e-5)
    vectors = ours.encode(TEXTS, prompt=QUERY, convert_to_tensor=True)
    torch.testing.assert_close(ours.similarity(vectors, vectors), st.similarity(vectors, vectors))
    assert st.similarity_fn_name == ours.similarity_fn_name == "cosine"


def test_sentence_transformers_saves_a_folder_that_loads_again(saved, tmp_path):
    ours, path = saved
    st = SentenceTransformer(str(path), trust_remote_code=True, device="cpu", local_files_only=True)
    st.save(str(tmp_path / "resaved"))
    again = SentenceTransformer(str(tmp_path / "resaved"), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS, prompt=QUERY), ours.encode(TEXTS, instruction=QUERY), atol=1e-5)
    assert PromptEmbedder.from_pretrained(tmp_path / "resaved", device="cpu").config.prompts == ours.config.prompts


def test_without_trust_remote_code_sentence_transformers_refuses_to_import_it(saved):
    _, path = saved
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SentenceTransformer(str(path), device="cpu")
