import math

import pytest
import torch

from promptembedder.config import Relaxation
from promptembedder.prompting import PromptingLLM, prompt_statistics, relax, vocabulary_embeddings

from tiny import make_tokenizer, tiny_prompting_lm

INSTRUCTIONS = ["retrieve the definition of the word", "classify the topic of the news"]


def make(relaxation=Relaxation.SOFTMAX, temperature=1.0, k=4):
    return PromptingLLM(tiny_prompting_lm(), make_tokenizer("plain", "left"), k, relaxation, temperature)


def test_shape_and_width():
    soft = make(k=5)(INSTRUCTIONS)
    assert soft.shape == (2, 5, 32)


def test_softmax_tokens_are_convex_combinations_of_vocabulary_embeddings():
    prompting = make(temperature=0.7)
    soft = prompting(INSTRUCTIONS[:1])
    ids = prompting.tokenizer(INSTRUCTIONS[:1], return_tensors="pt")["input_ids"]
    logits = prompting.model(input_ids=ids).logits[0, -1]
    weights = torch.softmax(logits / 0.7, dim=-1)
    assert torch.all(weights >= 0) and torch.isclose(weights.sum(), torch.tensor(1.0))
    torch.testing.assert_close(soft[0, 0], weights @ vocabulary_embeddings(prompting.model), atol=1e-5, rtol=1e-5)


def test_straight_through_forward_is_a_vocabulary_row_with_a_soft_gradient():
    prompting = make(Relaxation.STRAIGHT_THROUGH)
    soft = prompting(INSTRUCTIONS)
    vocab = vocabulary_embeddings(prompting.model)
    flat = soft.reshape(-1, soft.shape[-1])
    nearest = torch.cdist(flat, vocab).argmin(dim=1)
    torch.testing.assert_close(flat, vocab[nearest], atol=1e-6, rtol=1e-6)
    soft.square().sum().backward()
    layer = prompting.model.model.layers[0].self_attn.q_proj.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0


def test_gumbel_is_stochastic_in_training_and_deterministic_in_eval():
    prompting = make(Relaxation.GUMBEL, temperature=0.5)
    prompting.train()
    torch.manual_seed(0)
    a = prompting(INSTRUCTIONS)
    b = prompting(INSTRUCTIONS)
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert prompting.model.model.norm.weight.grad.abs().sum() > 0
    prompting.eval()
    with torch.no_grad():
        torch.testing.assert_close(prompting(INSTRUCTIONS), prompting(INSTRUCTIONS))


def test_relax_rows_are_distributions():
    logits = torch.randn(3, 11)
    for relaxation in Relaxation:
        weights = relax(logits, relaxation, 0.5, training=True)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3))
        assert torch.all(weights >= -1e-6)


def test_gradient_flows_through_every_generation_step():
    prompting = make(k=3)
    seen = []
    hook = prompting.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["inputs_embeds"]), with_kwargs=True
    )
    soft = prompting(INSTRUCTIONS[:1])
    hook.remove()
    last_input = seen[-1]  # instruction + the first K-1 generated vectors, fed back without detaching
    (grad,) = torch.autograd.grad(soft[:, -1].sum(), last_input)
    generated = grad[0, -(prompting.num_soft_tokens - 1) :]
    assert torch.all(generated.abs().sum(-1) > 0)
    # and each fed-back vector is the previous step's output itself, not a copy
    torch.testing.assert_close(last_input[0, -2:], soft[0, :2])


def test_left_padding_does_not_change_a_prompt():
    prompting = make()
    with torch.no_grad():
        alone = prompting(INSTRUCTIONS[1:])
        batch = prompting(["the"] + INSTRUCTIONS[1:] + ["retrieve a passage that is similar to the query text"])
    torch.testing.assert_close(alone[0], batch[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_temperature_is_rejected_by_config(bad):
    from promptembedder import PromptEmbedderConfig

    with pytest.raises(ValueError, match="temperature"):
        PromptEmbedderConfig(temperature=bad)


def test_factored_gradients_stay_on_when_the_prompting_llm_has_dropout():
    from tiny import tiny_prompting_lm

    def run(factored: bool):
        lm = tiny_prompting_lm(0, attention_dropout=0.5, attn_implementation="eager")
        model = PromptingLLM(lm, make_tokenizer("plain", "left"), 4, factored_vocab_grad=factored)
        model.train()
        torch.manual_seed(1)
        soft = model(INSTRUCTIONS)
        soft.square().sum().backward()
        return model, soft.detach(), {n: p.grad for n, p in model.model.named_parameters()}

    plain_model, plain_soft, plain_grads = run(False)
    model, soft, grads = run(True)
    assert model._plain_head  # the factored path was taken although dropout makes two forward passes differ
    torch.testing.assert_close(soft, plain_soft)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4)


def test_entropy_is_that_of_each_steps_relaxed_distribution():
    prompting = make(temperature=0.7)
    _, entropy = prompting(INSTRUCTIONS[:1], return_entropy=True)
    ids = prompting.tokenizer(INSTRUCTIONS[:1], return_tensors="pt")["input_ids"]
    logits = prompting.model(input_ids=ids).logits[0, -1]
    want = torch.distributions.Categorical(logits=logits / 0.7).entropy()
    assert entropy.shape == (1, 4)
    torch.testing.assert_close(entropy[0, 0], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kv_cache,factored", [(True, False), (False, True), (True, True)])
def test_entropy_is_the_same_on_every_generation_path(kv_cache, factored):
    plain = make()
    plain.train()
    fast = make()
    fast.load_state_dict(plain.state_dict())
    fast.train()
    fast.kv_cache, fast.factored_vocab_grad = kv_cache, factored
    want, got = plain(INSTRUCTIONS, return_entropy=True)[1], fast(INSTRUCTIONS, return_entropy=True)[1]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    got.sum().backward()  # the entropy keeps its graph on every path: a floor on it can train the model
    head = fast.model.get_output_embeddings().weight
    assert head.grad is not None and head.grad.abs().sum() > 0


def test_prompt_statistics_tell_a_collapsed_prompter_from_one_that_reads_its_instruction():
    prompting = make()
    same = prompt_statistics(prompting, [INSTRUCTIONS[0]] * 3)
    different = prompt_statistics(prompting, INSTRUCTIONS)
    assert abs(same["distinct"]) < 1e-6 and different["distinct"] > 1e-4
    with torch.no_grad():
        made = prompting.eval()(INSTRUCTIONS, return_entropy=True)
    assert prompt_statistics(prompting, INSTRUCTIONS, made=made) == different
    assert 0 < different["entropy_min"] <= different["entropy"] <= math.log(prompting.model.config.vocab_size)


@pytest.mark.parametrize("kv_cache,factored", [(False, False), (True, False), (False, True)])
def test_returned_weights_are_the_distributions_the_soft_tokens_mix(kv_cache, factored):
    prompting = make(temperature=0.7)
    prompting.train()
    prompting.kv_cache, prompting.factored_vocab_grad = kv_cache, factored
    soft, entropy, weights = prompting(INSTRUCTIONS, return_weights=True)
    vocab = vocabulary_embeddings(prompting.model)
    assert weights.shape == (2, 4, vocab.shape[0])
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(weights @ vocab, soft, atol=1e-5, rtol=1e-5)
    p = weights.clamp_min(1e-30)
    torch.testing.assert_close(-(p * p.log()).sum(-1), entropy, atol=1e-4, rtol=1e-4)
    weights[..., :10].sum().backward()  # with their graph: a mixture-table W trains the Prompting LLM through them
    assert prompting.model.get_output_embeddings().weight.grad.abs().sum() > 0
