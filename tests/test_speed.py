"""The core's speed options change how soft prompts and embeddings are computed, never what comes out."""

import pytest
import torch
import torch.nn.functional as F

from promptembedder.config import Pooling, Relaxation
from promptembedder.embedding import EmbeddingLLM, enable_checkpointing
from promptembedder.prompting import PromptingLLM

from tiny import make_tokenizer, tiny_embedding_model, tiny_prompting_lm

INSTRUCTIONS = ["retrieve the definition of the word", "classify the topic of the news articles in the city"]
TEXTS = ["the old king reads a big red book in the city", "a cat", "happy people walk to the river and eat"]


def prompting(k=5, relaxation=Relaxation.SOFTMAX, **kwargs):
    return PromptingLLM(tiny_prompting_lm(), make_tokenizer("plain", "left"), k, relaxation, 0.7, **kwargs).train()


def prompts_and_grads(model: PromptingLLM, seed: int = 0):
    torch.manual_seed(seed)
    soft = model(INSTRUCTIONS)
    (soft * torch.linspace(-1, 1, soft.numel()).reshape(soft.shape)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.model.named_parameters() if p.grad is not None}
    return soft.detach(), grads


def assert_same(a, b, atol=1e-5):
    torch.testing.assert_close(a[0], b[0], atol=atol, rtol=1e-4)
    assert a[1].keys() == b[1].keys()
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("relaxation", list(Relaxation))
def test_kv_cache_gives_the_same_soft_prompts_and_gradients(relaxation):
    plain = prompts_and_grads(prompting(relaxation=relaxation))
    cached = prompts_and_grads(prompting(relaxation=relaxation, kv_cache=True))
    assert_same(plain, cached)
    assert len(plain[1]) == len(list(tiny_prompting_lm().parameters()))  # every weight got a gradient


def test_kv_cache_steps_aside_under_gradient_checkpointing():
    model = prompting(kv_cache=True)
    enable_checkpointing(model.model)
    assert model._checkpointing()
    assert_same(prompts_and_grads(prompting()), prompts_and_grads(model))


def test_fixed_width_instruction_padding_changes_nothing():
    model = prompting(pad_to_multiple_of=16)
    ids, mask = model._left_padded(INSTRUCTIONS)
    assert ids.shape[1] == 16 and mask[:, 0].sum() == 0
    assert_same(prompts_and_grads(prompting()), prompts_and_grads(model))


def causal_lm(kind: str):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    from tiny import VOCAB

    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    if kind == "untied":
        return LlamaForCausalLM(LlamaConfig(hidden_size=32, num_key_value_heads=2, tie_word_embeddings=False, **common))
    if kind == "qwen2":  # biases on q, k, v
        from transformers import Qwen2Config, Qwen2ForCausalLM

        return Qwen2ForCausalLM(Qwen2Config(hidden_size=32, num_key_value_heads=2, tie_word_embeddings=True, **common))
    if kind == "gemma":  # input embeddings scaled by sqrt(width): the relaxation's matrix is not the head's
        config = Gemma3TextConfig(hidden_size=32, num_key_value_heads=2, head_dim=8, sliding_window=16, **common)
        return Gemma3ForCausalLM(config)
    return tiny_prompting_lm()


@pytest.mark.parametrize("kind", ["tied", "untied", "qwen2", "gemma"])
@pytest.mark.parametrize("relaxation", list(Relaxation))
@pytest.mark.parametrize("kv_cache", [False, True])
def test_factored_vocabulary_gradients_are_the_same_gradients(kind, relaxation, kv_cache):
    def run(factored: bool):
        model = PromptingLLM(causal_lm(kind), make_tokenizer("plain", "left"), 4, relaxation, 0.7, kv_cache=kv_cache)
        model.factored_vocab_grad = factored
        return prompts_and_grads(model.train()), model

    plain, _ = run(False)
    factored, model = run(True)
    assert model._plain_head  # the factored path was taken
    assert_same(plain, factored)


def test_factored_gradients_under_checkpointing_leave_the_layers_alone():
    def run(factored: bool):
        model = prompting(factored_vocab_grad=factored)
        enable_checkpointing(model.model)
        return prompts_and_grads(model)

    assert_same(run(False), run(True))
    model = prompting(factored_vocab_grad=True)
    prompts_and_grads(model)
    assert all("forward" not in vars(m) for m in model.model.modules())  # every patched layer restored


def test_factored_gradients_step_aside_for_a_frozen_vocabulary_and_in_eval():
    model = prompting(factored_vocab_grad=True)
    model.model.get_input_embeddings().weight.requires_grad_(False)
    assert model._factored_step(*model._left_padded(INSTRUCTIONS), []) is None
    model = prompting(factored_vocab_grad=True).eval()
    assert model._factored_step(*model._left_padded(INSTRUCTIONS), []) is None


def test_compiled_generation_gives_the_same_soft_prompts_and_gradients():
    model = prompting(kv_cache=False, pad_to_multiple_of=16)
    model.compile_generation(backend="aot_eager")  # traced by dynamo and AOT autograd, no code generation
    assert_same(prompts_and_grads(prompting()), prompts_and_grads(model))
    first = model(INSTRUCTIONS[:1])
    assert model(INSTRUCTIONS[:1]).data_ptr() != first.data_ptr()  # outputs are copies (CUDA graphs reuse memory)


def reference_forward(emb: EmbeddingLLM, texts, prefix=None):
    """The row-by-row build the batched layout replaced, kept as the definition of the right answer."""
    num_prefix = 0 if prefix is None else prefix.shape[-2]
    if prefix is not None and prefix.dim() == 2:
        prefix = prefix.expand(len(texts), *prefix.shape)
    ids = emb.tokenize(texts, num_prefix)
    embed = emb.model.get_input_embeddings()
    rows, text_masks = [], []
    for i, row in enumerate(ids):
        tokens = embed(torch.tensor(row))
        head = emb._leading_special(row)
        parts = [tokens[:head]] + ([prefix[i]] if prefix is not None else []) + [tokens[head:]]
        rows.append(torch.cat(parts))
        text_mask = [0] * head + [0] * num_prefix + [1] * (len(row) - head)
        if head and row[0] != emb.tokenizer.bos_token_id:
            text_mask[0] = 1
        text_masks.append(text_mask)
    width = max(r.shape[0] for r in rows)
    left = emb.tokenizer.padding_side == "left"
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    pool = torch.zeros(len(rows), width)
    padded = []
    for i, (row, tm) in enumerate(zip(rows, text_masks, strict=True)):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        mask[i, span] = 1
        pool[i, span] = torch.tensor(tm, dtype=torch.float32)
        pad = row.new_zeros(width - len(row), row.shape[-1])
        padded.append(torch.cat([pad, row]) if left else torch.cat([row, pad]))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    hidden = emb.model(inputs_embeds=torch.stack(padded), attention_mask=mask, position_ids=positions)
    return F.normalize(emb._pool(hidden.last_hidden_state.float(), mask, pool), dim=-1)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
@pytest.mark.parametrize("pooling", list(Pooling))
def test_batched_layout_equals_the_row_by_row_build(kind, pooling):
    model, tokenizer = tiny_embedding_model(kind)
    emb = EmbeddingLLM(model, tokenizer, pooling=pooling)
    torch.manual_seed(0)
    prefix = torch.randn(len(TEXTS), 3, emb.hidden_size, requires_grad=True)
    fast = emb(TEXTS, prefix=prefix)
    slow = reference_forward(emb, TEXTS, prefix)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
    (grad_fast,) = torch.autograd.grad(fast.sum(), prefix)
    (grad_slow,) = torch.autograd.grad(slow.sum(), prefix)
    torch.testing.assert_close(grad_fast, grad_slow, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(emb(TEXTS), reference_forward(emb, TEXTS), atol=1e-6, rtol=1e-6)


def test_embedding_llm_gradient_checkpointing_recomputes_and_changes_nothing():
    def run(checkpointing: bool):
        model, tokenizer = tiny_embedding_model("gemma")
        emb = EmbeddingLLM(model, tokenizer)
        if checkpointing:
            emb.enable_gradient_checkpointing()
        emb.train()  # what the Trainer does; the backbone stays in eval mode
        calls = []
        emb.model.layers[0].mlp.register_forward_hook(lambda *_: calls.append(1))
        prefix = torch.linspace(-1, 1, 3 * emb.hidden_size).reshape(3, -1).requires_grad_(True)
        out = emb(TEXTS, prefix=prefix)
        out.square().sum().backward()
        return out.detach(), prefix.grad, len(calls), emb

    out_a, grad_a, calls_a, _ = run(False)
    out_b, grad_b, calls_b, emb = run(True)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(grad_a, grad_b)
    assert (calls_a, calls_b) == (1, 2)  # the layer ran again in backward
    assert not emb.training and not emb.model.training and not emb.model.layers[0].mlp.training
