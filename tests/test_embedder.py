import copy
import hashlib
import json

import numpy as np
import pytest
import torch

from promptembedder import (
    Conditioning,
    DocumentPrompt,
    EmbeddingModelMismatchError,
    EmbeddingModelNotFoundError,
    NotAPromptEmbedderError,
    PromptEmbedder,
    PromptEmbedderConfig,
    Relaxation,
)

from tiny import make_tokenizer, tiny_embedder, tiny_embedding_model, tiny_prompting_lm

TEXTS = ["the cat plays", "a dog eats bread", "stocks fell as the market price rose", "the king reads"]
INSTRUCTION = "find similar text"


@pytest.mark.parametrize("relaxation", list(Relaxation))
def test_gradient_reaches_prompting_llm_and_w_and_never_the_embedding_llm(relaxation):
    model = tiny_embedder("gemma", relaxation=relaxation, temperature=0.5)
    model.train()
    out = model(TEXTS, INSTRUCTION)
    (out @ out.T).sum().backward()
    for name, p in [*model.prompting.named_parameters(), *model.alignment.named_parameters()]:
        assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.embedding.named_parameters():
        assert not p.requires_grad and p.grad is None, name


def test_cached_and_uncached_prompts_give_identical_embeddings():
    model = tiny_embedder("llama")
    cached = model.encode(TEXTS, instruction=INSTRUCTION, batch_size=2)
    assert INSTRUCTION in model._prompt_cache
    uncached = model.encode(TEXTS, instruction=INSTRUCTION, batch_size=3, use_cache=False)
    np.testing.assert_array_equal(cached, model.encode(TEXTS, instruction=INSTRUCTION, batch_size=2))
    np.testing.assert_allclose(cached, uncached, atol=1e-6)


def test_training_mode_and_weight_updates_invalidate_the_prompt_cache():
    model = tiny_embedder("llama")
    before = model.encode(TEXTS, instruction=INSTRUCTION)
    model.train()
    assert not model._prompt_cache
    with torch.no_grad():
        for p in model.prompting.parameters():
            p.mul_(1.5)
    after = model.encode(TEXTS, instruction=INSTRUCTION)
    np.testing.assert_allclose(after, model.encode(TEXTS, instruction=INSTRUCTION, use_cache=False), atol=1e-6)
    assert not np.allclose(before, after)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
def test_encode_is_independent_of_batching(kind):
    model = tiny_embedder(kind)
    one_by_one = np.stack([model.encode(t, instruction=INSTRUCTION) for t in TEXTS])
    batched = model.encode(TEXTS, instruction=INSTRUCTION, batch_size=4)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_instruction_changes_the_embedding_and_none_means_no_prompt():
    model = tiny_embedder("llama")
    a = model.encode(TEXTS, instruction=INSTRUCTION)
    b = model.encode(TEXTS, instruction="classify the topic of the news")
    plain = model.encode(TEXTS)
    assert not np.allclose(a, b) and not np.allclose(a, plain)
    with torch.no_grad():
        np.testing.assert_allclose(plain, model.embedding(TEXTS).numpy(), atol=1e-6)


def test_instruction_plus_text_conditioning_makes_one_prompt_per_text():
    model = tiny_embedder("llama", conditioning=Conditioning.INSTRUCTION_TEXT)
    with torch.no_grad():
        prompts = model.prompt_for(TEXTS, INSTRUCTION)
    assert prompts.shape == (len(TEXTS), 5, 48)
    assert not torch.allclose(prompts[0], prompts[1])
    one_by_one = np.stack([model.encode(t, instruction=INSTRUCTION) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, model.encode(TEXTS, instruction=INSTRUCTION), atol=1e-5)


def test_documents_follow_the_configured_document_prompt():
    plain = tiny_embedder("llama")
    np.testing.assert_allclose(plain.encode_documents(TEXTS, INSTRUCTION), plain.encode(TEXTS), atol=1e-6)
    prompted = tiny_embedder("llama", document_prompt=DocumentPrompt.PROMPTED)
    np.testing.assert_allclose(
        prompted.encode_documents(TEXTS, INSTRUCTION), prompted.encode_queries(TEXTS, INSTRUCTION), atol=1e-6
    )


def test_bad_input_gets_clear_errors():
    model = tiny_embedder("llama")
    empty = model.encode([], instruction=INSTRUCTION)
    assert empty.shape == (0, 48) and empty.dtype == np.float32
    with pytest.raises(TypeError, match=r"texts\[1\] is a int"):
        model.encode(["ok", 3])
    with pytest.raises(ValueError, match="instruction is empty"):
        model.encode(TEXTS, instruction="  ")
    with pytest.raises(TypeError, match="list of strings"):
        model.encode(42)


def test_fingerprint_changes_with_trainable_weights_only():
    model = tiny_embedder("llama")
    before = model.fingerprint()
    assert model.fingerprint() == before
    with torch.no_grad():
        model.alignment.linear.bias.add_(1e-3)
    assert model.fingerprint() != before


def _saved_backbone(tmp_path, kind="llama", seed=1):
    backbone, tokenizer = tiny_embedding_model(kind, seed=seed)
    folder = tmp_path / f"backbone-{kind}-{seed}"
    backbone.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _saved_prompting(tmp_path):
    folder = tmp_path / "prompting"
    tiny_prompting_lm().save_pretrained(folder)
    make_tokenizer("plain", "left").save_pretrained(folder)
    return folder


def test_save_and_load_reproduce_embeddings_exactly(tmp_path):
    model = PromptEmbedder.from_models(
        str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path)), num_soft_tokens=3, device="cpu", max_length=64
    )
    with torch.no_grad():  # a trained model's weights differ from the pretrained ones
        for p in model.prompting.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    expected = model.encode(TEXTS, instruction=INSTRUCTION)
    out = model.save_pretrained(tmp_path / "saved")
    meta = json.loads((out / "promptembedder_config.json").read_text())
    assert meta["embedding_model"]["fingerprint"] == model.embedding_fingerprint()
    restored = PromptEmbedder.from_pretrained(out, device="cpu")
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), expected)
    assert restored.config == model.config and restored.fingerprint() == model.fingerprint()
    model.save_pretrained(out)  # overwriting a saved model is fine
    assert not list(tmp_path.glob(".saved*"))


def test_a_suffix_prompt_model_saves_loads_and_embeds_differently_from_a_prefix_one(tmp_path):
    kwargs = dict(num_soft_tokens=3, device="cpu", max_length=64)
    prompting, backbone = str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path))
    suffix = PromptEmbedder.from_models(prompting, backbone, prompt_position="suffix", **kwargs)
    prefix = PromptEmbedder.from_models(prompting, backbone, **kwargs)
    assert suffix.embedding.prompt_position.value == "suffix"
    assert suffix.fingerprint() != prefix.fingerprint()
    assert '"prompt_position"' not in prefix.config.identity_json()  # a prefix model's identity is unchanged
    expected = suffix.encode(TEXTS, instruction=INSTRUCTION)
    assert not np.allclose(expected, prefix.encode(TEXTS, instruction=INSTRUCTION))
    restored = PromptEmbedder.from_pretrained(suffix.save_pretrained(tmp_path / "saved"), device="cpu")
    assert restored.embedding.prompt_position.value == "suffix"
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), expected)


def test_a_mean_last_model_is_twice_as_wide_trains_saves_and_loads(tmp_path):
    """pooling ``mean+last`` with a template: every width a user reads (encode, the reported dimension,
    truncate_dim's bound) is the pooled one, twice the backbone's, and a training step reaches the prompter."""
    kwargs = dict(num_soft_tokens=3, device="cpu", max_length=64)
    prompting, backbone = str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path))
    model = PromptEmbedder.from_models(prompting, backbone, pooling="mean+last", text_template="prompteol", **kwargs)
    width = 2 * model.embedding.hidden_size
    assert model.get_sentence_embedding_dimension() == width
    expected = model.encode(TEXTS, instruction=INSTRUCTION)
    assert expected.shape == (len(TEXTS), width)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
    assert model.encode(TEXTS, instruction=INSTRUCTION, truncate_dim=width).shape == (len(TEXTS), width)
    model.train()
    loss = model(TEXTS, INSTRUCTION, use_cache=False).sum()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prompting.parameters())
    restored = PromptEmbedder.from_pretrained(model.save_pretrained(tmp_path / "saved"), device="cpu")
    assert restored.config.pooling.value == "mean+last"
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), expected)


def test_a_gated_model_starts_as_the_frozen_backbone_and_learns_how_much_prompt_to_add(tmp_path):
    """prompt_gate: at g = 0 every instruction gives the plain backbone's embedding exactly (a fresh prompt cannot
    hurt), the loss still has a gradient on g, and g saves and loads with W; an ungated model's identity is
    unchanged by the option's existence."""
    kwargs = dict(num_soft_tokens=3, device="cpu", max_length=64)
    prompting, backbone = str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path))
    gated = PromptEmbedder.from_models(prompting, backbone, prompt_gate=True, **kwargs)
    plain = gated.encode(TEXTS)
    assert float(gated.alignment.gate) == 0.0
    np.testing.assert_allclose(gated.encode(TEXTS, instruction=INSTRUCTION), plain, atol=1e-6)
    np.testing.assert_allclose(gated.encode(TEXTS, instruction="another task altogether"), plain, atol=1e-6)
    gated.train()
    (gated(TEXTS, INSTRUCTION, use_cache=False) * torch.tensor(plain[::-1].copy())).sum().backward()
    assert gated.alignment.gate.grad is not None and float(gated.alignment.gate.grad.abs()) > 0
    with torch.no_grad():
        gated.alignment.gate.fill_(0.5)
    gated.eval()
    halfway = gated.encode(TEXTS, instruction=INSTRUCTION)
    assert not np.allclose(halfway, plain, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(halfway, axis=1), 1.0, atol=1e-5)
    restored = PromptEmbedder.from_pretrained(gated.save_pretrained(tmp_path / "saved"), device="cpu")
    assert float(restored.alignment.gate) == 0.5
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), halfway)
    ungated = PromptEmbedder.from_models(prompting, backbone, **kwargs)
    assert ungated.alignment.gate is None and '"prompt_gate"' not in ungated.config.identity_json()
    assert gated.fingerprint() != ungated.fingerprint()


def test_a_deep_prompt_model_starts_as_the_shallow_one_trains_its_offsets_saves_and_loads(tmp_path):
    """deep_prompt: W carries one zero matrix per deeper layer, so step 0 embeds as the shallow model; the loss
    reaches them and the Prompting LLM; they save and load with W; a shallow model's identity is unchanged."""
    kwargs = dict(num_soft_tokens=3, device="cpu", max_length=64)
    prompting, backbone = str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path))
    deep = PromptEmbedder.from_models(prompting, backbone, deep_prompt=True, **kwargs)
    shallow = PromptEmbedder.from_models(prompting, backbone, **kwargs)
    assert deep.alignment.deep_layers == deep.embedding.deep_layers > 0
    np.testing.assert_array_equal(
        deep.encode(TEXTS, instruction=INSTRUCTION), shallow.encode(TEXTS, instruction=INSTRUCTION)
    )
    deep.train()
    out = deep(TEXTS, INSTRUCTION, use_cache=False)
    (out @ out.T.flip(0)).sum().backward()
    assert deep.alignment.deep.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in deep.prompting.parameters())
    with torch.no_grad():
        deep.alignment.deep.normal_(0, 0.05)
    deep.eval()
    expected = deep.encode(TEXTS, instruction=INSTRUCTION)
    assert not np.allclose(expected, shallow.encode(TEXTS, instruction=INSTRUCTION), atol=1e-4)
    restored = PromptEmbedder.from_pretrained(deep.save_pretrained(tmp_path / "saved"), device="cpu")
    assert restored.config.deep_prompt and restored.fingerprint() == deep.fingerprint()
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), expected)
    assert '"deep_prompt"' not in shallow.config.identity_json() and deep.fingerprint() != shallow.fingerprint()
    with pytest.raises(ValueError, match="carries deep prompts for 0 layers"):
        PromptEmbedder(deep.config, deep.prompting, shallow.alignment, deep.embedding)


def test_a_mixture_table_model_trains_through_the_weights_saves_and_loads(tmp_path):
    kwargs = dict(num_soft_tokens=3, device="cpu", max_length=64)
    prompting, backbone = str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path))
    mixed = PromptEmbedder.from_models(prompting, backbone, mixture_table=True, **kwargs)
    plain = PromptEmbedder.from_models(prompting, backbone, **kwargs)
    assert mixed.alignment.has_table and not plain.alignment.has_table
    assert mixed.fingerprint() != plain.fingerprint() and '"mixture_table"' not in plain.config.identity_json()
    mixed.train()
    out = mixed(TEXTS, INSTRUCTION)
    (out @ out.T).sum().backward()
    for name, p in [*mixed.prompting.named_parameters(), *mixed.alignment.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    mixed.eval()
    expected = mixed.encode(TEXTS, instruction=INSTRUCTION)
    assert not np.allclose(expected, plain.encode(TEXTS, instruction=INSTRUCTION))
    restored = PromptEmbedder.from_pretrained(mixed.save_pretrained(tmp_path / "saved"), device="cpu")
    assert restored.alignment.has_table and restored.fingerprint() == mixed.fingerprint()
    np.testing.assert_array_equal(restored.encode(TEXTS, instruction=INSTRUCTION), expected)


def test_a_different_embedding_llm_is_refused(tmp_path):
    model = PromptEmbedder.from_models(
        str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path)), num_soft_tokens=3, device="cpu", max_length=64
    )
    out = model.save_pretrained(tmp_path / "saved")
    other = _saved_backbone(tmp_path, seed=7)
    with pytest.raises(EmbeddingModelMismatchError, match="differs from the one this model was trained against"):
        PromptEmbedder.from_pretrained(out, embedding_model=str(other), device="cpu")
    with pytest.raises(EmbeddingModelNotFoundError, match="could not be loaded"):
        PromptEmbedder.from_pretrained(out, embedding_model=str(tmp_path / "nowhere"), device="cpu")


def test_a_folder_that_is_not_a_saved_model_is_refused(tmp_path):
    with pytest.raises(NotAPromptEmbedderError, match="not a saved PromptEmbedder"):
        PromptEmbedder.from_pretrained(tmp_path)
    (tmp_path / "promptembedder_config.json").write_text("{not json")
    with pytest.raises(NotAPromptEmbedderError, match="not valid JSON"):
        PromptEmbedder.from_pretrained(tmp_path)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved PromptEmbedder"):
        tiny_embedder("llama").save_pretrained(tmp_path / "stuff")


def test_config_round_trip_and_validation():
    config = PromptEmbedderConfig(relaxation="gumbel", conditioning="instruction+text")
    assert config.relaxation is Relaxation.GUMBEL
    assert PromptEmbedderConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(ValueError, match="relaxation='sampled' is not valid; choose one of: softmax"):
        PromptEmbedderConfig(relaxation="sampled")
    with pytest.raises(ValueError, match="num_soft_tokens"):
        PromptEmbedderConfig(num_soft_tokens=0)
    with pytest.raises(ValueError, match="Unknown PromptEmbedderConfig keys: colour"):
        PromptEmbedderConfig.from_dict({"colour": "red"})


# ---------------------------------------------------------------- defects of issue 17 (each failed before its fix)
def test_prompt_cache_and_fingerprint_follow_data_writes_dtype_and_generation_settings():
    model = tiny_embedder("llama")

    def cached_equals_uncached(atol):
        cached = model.encode(TEXTS, instruction=INSTRUCTION)
        np.testing.assert_allclose(cached, model.encode(TEXTS, instruction=INSTRUCTION, use_cache=False), atol=atol)

    seen = {model.fingerprint()}
    model.encode(TEXTS, instruction=INSTRUCTION)  # fills the cache
    for p in model.prompting.parameters():
        p.data.mul_(1.5)  # no version counter sees this
    cached_equals_uncached(1e-6)
    seen.add(model.fingerprint())
    model.prompting.temperature = 0.3
    cached_equals_uncached(1e-6)
    seen.add(model.fingerprint())
    model.prompting.relaxation = Relaxation.STRAIGHT_THROUGH
    cached_equals_uncached(1e-6)
    seen.add(model.fingerprint())
    model.to(torch.float64)  # the prompt must be remade in float64, not kept from the float32 weights
    cached_equals_uncached(1e-12)
    seen.add(model.fingerprint())
    assert len(seen) == 5


def test_fingerprint_reads_a_bounded_sample_of_each_weight_not_all_of_it(monkeypatch):
    import promptembedder.embedder as embedder_module

    model = tiny_embedder("llama")
    model.embedding_fingerprint()  # the frozen backbone's hash is taken once and is not the point here
    hashed = []
    real_sha256 = hashlib.sha256

    class Counting:
        def __init__(self, *args):
            self.inner = real_sha256(*args)
            hashed.append(sum(len(a) for a in args))

        def update(self, data):
            hashed.append(len(data))
            self.inner.update(data)

        def hexdigest(self):
            return self.inner.hexdigest()

    monkeypatch.setattr(embedder_module.hashlib, "sha256", Counting)
    monkeypatch.setattr(embedder_module, "FINGERPRINT_SAMPLE", 16, raising=False)
    model.fingerprint()
    tensors = [*model.prompting.parameters(), *model.alignment.parameters()]
    everything = sum(p.numel() * p.element_size() for p in tensors)
    assert 0 < sum(hashed) < everything / 4


def test_concurrent_encode_keeps_the_callers_training_mode_and_eval_results():
    import threading

    model = tiny_embedder("llama")
    expected = model.encode(TEXTS, instruction=INSTRUCTION)
    model.train()
    b_inside, a_done = threading.Event(), threading.Event()
    results = {}

    def hook(_module, _args):
        if threading.current_thread().name == "A":
            b_inside.wait(timeout=2)  # B enters while A is encoding (if the model lets it)
        else:
            b_inside.set()
            a_done.wait(timeout=2)  # B finishes only after A did

    handle = model.embedding.register_forward_pre_hook(hook)

    def run(name):
        results[name] = model.encode(TEXTS, instruction=INSTRUCTION, batch_size=len(TEXTS))
        if name == "A":
            a_done.set()

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("A", "B")]
    threads[0].start()
    threads[1].start()
    for t in threads:
        t.join(timeout=30)
    handle.remove()
    assert model.training  # the caller's mode, whatever the threads' interleaving
    for name in ("A", "B"):
        np.testing.assert_allclose(results[name], expected, atol=1e-6)


def test_many_threads_encode_what_one_thread_encodes():
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_embedder("gemma")
    instructions = [f"{INSTRUCTION} {w}" for w in ("cat", "dog", "bird", "fish")]
    expected = {i: model.encode(TEXTS, instruction=i, use_cache=False) for i in instructions}
    jobs = [instructions[n % len(instructions)] for n in range(48)]

    def run(instruction):
        if jobs.index(instruction) == 0:
            model._prompt_cache.clear()  # invalidation racing with reads
        return instruction, model.encode(TEXTS, instruction=instruction, batch_size=2)

    with ThreadPoolExecutor(8) as pool:
        for instruction, got in pool.map(run, jobs):
            np.testing.assert_allclose(got, expected[instruction], atol=1e-6)
    copied = copy.deepcopy(model)  # the locks are module-level: a model with a warm cache still copies
    np.testing.assert_allclose(copied.encode(TEXTS, instruction=jobs[0]), expected[jobs[0]], atol=1e-6)


def test_a_backbone_that_fails_to_load_is_not_reported_as_a_mismatch(tmp_path, monkeypatch):
    import promptembedder.models as models

    model = PromptEmbedder.from_models(
        str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path)), num_soft_tokens=3, device="cpu", max_length=64
    )
    out = model.save_pretrained(tmp_path / "saved")

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(models, "load_base_model", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError, match="Tried to allocate"):
        PromptEmbedder.from_pretrained(out, device="cpu")


# ---------------------------------------------------------------- encode as sentence-transformers users call it
def test_normalize_false_is_honoured_and_truncate_dim_renormalises():
    model = tiny_embedder("gemma")  # config.normalize is True
    raw = model.encode(TEXTS, instruction=INSTRUCTION, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)  # before: silently normalised anyway
    np.testing.assert_allclose(model.encode(TEXTS, instruction=INSTRUCTION, normalize_embeddings=False), raw)
    unit = model.encode(TEXTS, instruction=INSTRUCTION)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    cut = model.encode(TEXTS, instruction=INSTRUCTION, truncate_dim=8)
    np.testing.assert_allclose(cut, raw[:, :8] / np.linalg.norm(raw[:, :8], axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(
        model.encode(TEXTS, instruction=INSTRUCTION, truncate_dim=8, normalize=False), raw[:, :8]
    )


def test_prompt_prompt_name_tensors_and_lists():
    model = tiny_embedder("llama")
    model.config.prompts = {"animals": INSTRUCTION}
    expected = model.encode(TEXTS, instruction=INSTRUCTION)
    np.testing.assert_array_equal(model.encode(TEXTS, prompt=INSTRUCTION), expected)
    np.testing.assert_array_equal(model.encode(TEXTS, prompt_name="animals"), expected)
    np.testing.assert_array_equal(model.encode_query(TEXTS, prompt_name="animals"), expected)
    tensor = model.encode(TEXTS, prompt=INSTRUCTION, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.device == model.device
    np.testing.assert_array_equal(tensor.numpy(), expected)
    rows = model.encode(TEXTS, prompt=INSTRUCTION, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == len(TEXTS)
    assert model.encode([], prompt=INSTRUCTION).shape == (0, model.get_sentence_embedding_dimension())
    binary = model.encode(TEXTS, prompt=INSTRUCTION, precision="ubinary")
    assert binary.dtype == np.uint8 and binary.shape == (len(TEXTS), model.get_sentence_embedding_dimension() // 8)
    scores = model.similarity(expected, expected)
    torch.testing.assert_close(scores, torch.from_numpy(expected @ expected.T), atol=1e-5, rtol=1e-5)
    model.similarity_fn_name = "dot"
    assert model.config.similarity_fn_name.value == "dot"


def test_sentence_transformers_options_get_clear_errors():
    model = tiny_embedder("llama")
    with pytest.raises(ValueError, match="Unknown prompt_name 'nope' \\(known: none saved\\)"):
        model.encode(TEXTS, prompt_name="nope")
    with pytest.raises(ValueError, match="same option under two names"):
        model.encode(TEXTS, instruction="a", prompt="b")
    with pytest.raises(ValueError, match="same option under two names"):
        model.encode(TEXTS, normalize=True, normalize_embeddings=False)
    with pytest.raises(ValueError, match="precision='float16' is not supported; choose one of: float32"):
        model.encode(TEXTS, precision="float16")
    with pytest.raises(ValueError, match="truncate_dim must be an integer from 1 to 48"):
        model.encode(TEXTS, truncate_dim=100)
    with pytest.raises(ValueError, match="similarity_fn_name='maxsim' is not valid"):
        model.similarity_fn_name = "maxsim"
    with pytest.raises(ValueError, match="prompts\\['x'\\] must be a non-empty instruction"):
        PromptEmbedderConfig(prompts={"x": " "})


def test_prompts_and_similarity_are_saved_but_are_not_part_of_the_fingerprint(tmp_path):
    model = PromptEmbedder.from_models(
        str(_saved_prompting(tmp_path)), str(_saved_backbone(tmp_path)), num_soft_tokens=3, device="cpu", max_length=64
    )
    before = model.fingerprint()
    model.config.prompts = {"query": INSTRUCTION}
    model.similarity_fn_name = "dot"
    assert model.fingerprint() == before  # task names change no embedding: cached evaluations stay valid
    restored = PromptEmbedder.from_pretrained(model.save_pretrained(tmp_path / "saved"), device="cpu")
    assert restored.config.prompts == {"query": INSTRUCTION} and restored.similarity_fn_name == "dot"


def test_the_weights_state_is_checked_once_per_encode_call_not_once_per_batch():
    model = tiny_embedder("llama")
    expected = model.encode(TEXTS, instruction=INSTRUCTION, use_cache=False)
    real, calls = model._state, []
    model._state = lambda: calls.append(1) or real()
    np.testing.assert_allclose(model.encode(TEXTS, instruction=INSTRUCTION, batch_size=1), expected, atol=1e-6)
    assert len(calls) == 1  # four batches, one check (about 7 ms for a 135M Prompting LLM on a CPU)
    model.encode(TEXTS, instruction=INSTRUCTION, batch_size=1)
    assert len(calls) == 2  # the next call checks again: weights may have changed in between


def test_weight_statistics_of_the_fingerprint_do_not_depend_on_the_thread_count():
    """A whole-tensor reduction splits by thread count and its last bits move with it; two processes with
    different OMP_NUM_THREADS must still agree on a model's fingerprint (the eval cache is keyed by it)."""
    from promptembedder.embedder import _exact_stats

    weights = torch.randn(2_000_003, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _exact_stats(weights)
        torch.set_num_threads(2)
        two = _exact_stats(weights)
    finally:
        torch.set_num_threads(threads)
    assert one == two
    assert float(one[0]) == pytest.approx(float(weights.double().sum()), rel=1e-9, abs=1e-6)
    assert float(one[1]) == pytest.approx(float(weights.double().square().sum()), rel=1e-9)
