import pytest
import torch

from promptembedder.config import PROMPTEOL_TEMPLATE, Pooling, PromptPosition
from promptembedder.embedding import EmbeddingLLM

from tiny import tiny_embedding_model

SHORT = "a cat"
LONGER = ["the old king reads a big red book in the city", "the dog plays", "happy people walk to the river and eat"]


def backbone(kind, pooling):
    model, tokenizer = tiny_embedding_model(kind)
    return EmbeddingLLM(model, tokenizer, pooling=pooling)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
@pytest.mark.parametrize("pooling", list(Pooling))
@pytest.mark.parametrize("with_prefix", [False, True])
def test_text_alone_equals_text_in_padded_batch(kind, pooling, with_prefix):
    emb = backbone(kind, pooling)
    torch.manual_seed(3)
    prefix = torch.randn(3, emb.hidden_size) if with_prefix else None
    with torch.no_grad():
        alone = emb([SHORT], prefix=prefix)[0]
        batch = emb([LONGER[0], SHORT, *LONGER[1:]], prefix=prefix)
    torch.testing.assert_close(alone, batch[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
@pytest.mark.parametrize("pooling", list(Pooling))
def test_suffix_prompt_alone_equals_it_in_a_padded_batch(kind, pooling):
    model, tokenizer = tiny_embedding_model(kind)
    emb = EmbeddingLLM(model, tokenizer, pooling=pooling, prompt_position="suffix")
    torch.manual_seed(3)
    prompt = torch.randn(3, emb.hidden_size)
    with torch.no_grad():
        alone = emb([SHORT], prefix=prompt)[0]
        batch = emb([LONGER[0], SHORT, *LONGER[1:]], prefix=prompt)
    torch.testing.assert_close(alone, batch[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gemma", "llama"])
def test_suffix_prompt_is_read_after_the_text_and_pooled_over_its_positions(kind):
    """[text tokens][K soft vectors]: mean pooling is the mean of the K states, last pooling the last one;
    on a causal backbone a prefix prompt leaves nothing to read at the end, a suffix one decides it."""
    model, tokenizer = tiny_embedding_model(kind)
    emb = EmbeddingLLM(model, tokenizer, pooling="mean", prompt_position=PromptPosition.SUFFIX, normalize=False)
    torch.manual_seed(0)
    prompt = torch.randn(3, emb.hidden_size)
    ids = tokenizer(SHORT)["input_ids"]
    inputs = torch.cat([model.get_input_embeddings()(torch.tensor([ids])), prompt[None]], dim=1)
    with torch.no_grad():
        states = model(inputs_embeds=inputs).last_hidden_state[0]
        torch.testing.assert_close(emb([SHORT], prefix=prompt)[0], states[-3:].mean(0), atol=1e-5, rtol=1e-5)
        emb.pooling = Pooling.LAST
        torch.testing.assert_close(emb([SHORT], prefix=prompt)[0], states[-1], atol=1e-5, rtol=1e-5)
        emb.pooling = Pooling.MEAN
        assert torch.equal(emb([SHORT])[0], EmbeddingLLM(model, tokenizer, normalize=False)([SHORT])[0])  # no prompt
    prompt.requires_grad_(True)
    emb([SHORT, LONGER[0]], prefix=prompt).sum().backward()
    assert prompt.grad.abs().sum(-1).gt(0).all()  # every soft position reaches the pooled vector


def test_padding_sides_are_the_ones_under_test():
    assert tiny_embedding_model("gemma")[1].padding_side == "left"
    assert tiny_embedding_model("llama")[1].padding_side == "right"


def test_per_row_prefixes_differ_per_text():
    emb = backbone("llama", Pooling.LAST)
    torch.manual_seed(0)
    prefixes = torch.randn(2, 3, emb.hidden_size)
    with torch.no_grad():
        both = emb([SHORT, SHORT], prefix=prefixes)
        first = emb([SHORT], prefix=prefixes[0])
    torch.testing.assert_close(both[0], first[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(both[0], both[1])


def test_frozen_and_always_in_eval_mode():
    emb = backbone("bert", Pooling.MEAN)
    emb.train()
    assert not emb.training and not emb.model.training
    assert not any(p.requires_grad for p in emb.parameters())


def test_gradient_reaches_the_prefix_through_the_frozen_model():
    emb = backbone("gemma", Pooling.LAST)
    prefix = torch.randn(2, emb.hidden_size, requires_grad=True)
    emb(LONGER, prefix=prefix).sum().backward()
    assert prefix.grad is not None and prefix.grad.abs().sum() > 0
    assert all(p.grad is None for p in emb.parameters())


def test_outputs_are_normalised_unless_asked_not_to():
    emb = backbone("llama", Pooling.MEAN)
    with torch.no_grad():
        torch.testing.assert_close(emb(LONGER).norm(dim=-1), torch.ones(3))
        emb.normalize = False
        assert not torch.allclose(emb(LONGER).norm(dim=-1), torch.ones(3))


def test_long_texts_are_truncated_with_one_warning():
    model, tokenizer = tiny_embedding_model("llama")
    emb = EmbeddingLLM(model, tokenizer, max_length=12)
    long_text = " ".join(["the cat"] * 30)
    with pytest.warns(UserWarning, match="truncated") as record:
        with torch.no_grad():
            emb([long_text], prefix=torch.zeros(5, emb.hidden_size))
            emb([long_text])
    assert len(record) == 1
    assert emb.tokenize([long_text], num_prefix=5)[0].__len__() == 7


def test_soft_prompt_goes_after_bos():
    emb = backbone("gemma", Pooling.LAST)
    ids = emb.tokenize([SHORT])[0]
    assert ids[0] == emb.tokenizer.bos_token_id and emb._leading_special(ids) == 1


def test_wrong_prefix_width_is_a_clear_error():
    emb = backbone("llama", Pooling.LAST)
    with pytest.raises(ValueError, match="width"):
        emb([SHORT], prefix=torch.zeros(2, emb.hidden_size + 1))


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
def test_text_template_reads_each_text_inside_it(kind):
    model, tokenizer = tiny_embedding_model(kind)
    plain = EmbeddingLLM(model, tokenizer, pooling="last")
    wrapped = EmbeddingLLM(model, tokenizer, pooling="last", text_template="prompteol")
    assert wrapped.text_template == PROMPTEOL_TEMPLATE
    torch.manual_seed(3)
    prompt = torch.randn(3, plain.hidden_size)
    with torch.no_grad():
        want = plain([PROMPTEOL_TEMPLATE.format(text=t) for t in LONGER], prefix=prompt)
        got = wrapped(LONGER, prefix=prompt)
    torch.testing.assert_close(got, want)


def test_a_long_text_is_cut_inside_the_template_never_the_template():
    model, tokenizer = tiny_embedding_model("llama")
    emb = EmbeddingLLM(model, tokenizer, pooling="last", text_template="the {text} river", max_length=24)
    tail = tokenizer(" river", add_special_tokens=False)["input_ids"]
    with pytest.warns(UserWarning, match="text_template leaves"):
        rows = emb.tokenize([" ".join(["dog"] * 60), SHORT], num_prefix=5)
    assert all(len(row) <= 24 - 5 for row in rows)
    assert all(row[-len(tail) :] == tail for row in rows)  # the template's close is what "last" reads


def test_a_template_without_one_text_slot_is_a_clear_error():
    from promptembedder.config import PromptEmbedderConfig

    with pytest.raises(ValueError, match=r"must contain '\{text\}' exactly once"):
        PromptEmbedderConfig(text_template="no slot here")
    assert "text_template" not in PromptEmbedderConfig().identity_json()  # old models keep their identity
    assert "text_template" in PromptEmbedderConfig(text_template="prompteol").identity_json()


@pytest.mark.parametrize("kind", ["gemma", "bert"])
def test_mean_last_pools_both_read_outs_so_a_cosine_is_their_mean(kind):
    """``mean+last``: [mean/|mean| ; last/|last|] / sqrt(2), a unit vector twice as wide, even unnormalised, so
    the dot product of two embeddings is the mean of the mean-pooled and the last-token cosines."""
    from promptembedder.embedding import raw_pooling

    model, tokenizer = tiny_embedding_model(kind)
    both, mean, last = (EmbeddingLLM(model, tokenizer, pooling=p) for p in ("mean+last", "mean", "last"))
    assert both.output_dim == 2 * both.hidden_size and mean.output_dim == mean.hidden_size
    torch.manual_seed(1)
    prefix = torch.randn(2, both.hidden_size)
    with torch.no_grad():
        b, m, la = (e(LONGER, prefix=prefix) for e in (both, mean, last))
        with raw_pooling():
            raw = both(LONGER, prefix=prefix)
    torch.testing.assert_close(raw, b)  # the balance of the halves is the read-out, not a scale to undo
    torch.testing.assert_close(b.norm(dim=-1), torch.ones(len(LONGER)))
    torch.testing.assert_close(b @ b.T, ((m @ m.T) + (la @ la.T)) / 2, atol=1e-5, rtol=1e-5)


def deep_backbone(kind, pooling=Pooling.MEAN):
    model, tokenizer = tiny_embedding_model(kind)
    return EmbeddingLLM(model, tokenizer, pooling=pooling, deep_prompt=True)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
def test_deep_prompt_with_zero_offsets_reads_as_the_shallow_prompt(kind):
    """Deep rows of zeros add nothing: a deep model starts as the shallow one, whatever the backbone."""
    shallow, deep = backbone(kind, Pooling.MEAN), deep_backbone(kind)
    assert deep.deep_layers == deep.model.config.num_hidden_layers - 1 and shallow.deep_layers == 0
    torch.manual_seed(3)
    prefix = torch.randn(3, deep.hidden_size)
    rows = torch.cat([prefix, torch.zeros(3 * deep.deep_layers, deep.hidden_size)])
    with torch.no_grad():
        torch.testing.assert_close(deep(LONGER, prefix=rows), shallow(LONGER, prefix=prefix), atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["gemma", "llama", "bert"])
def test_deep_offsets_reach_the_layers_and_a_padded_batch_reads_each_text_as_alone(kind):
    emb = deep_backbone(kind)
    torch.manual_seed(4)
    rows = torch.randn(3 * (1 + emb.deep_layers), emb.hidden_size, requires_grad=True)
    with torch.no_grad():
        alone = emb([SHORT], prefix=rows)[0]
        batch = emb([LONGER[0], SHORT, *LONGER[1:]], prefix=rows)
        first_only = emb([SHORT], prefix=torch.cat([rows[:3], torch.zeros_like(rows[3:])]))[0]
    torch.testing.assert_close(alone, batch[1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(alone, first_only, atol=1e-4)  # the offsets are read
    emb(LONGER, prefix=rows).sum().backward()
    assert rows.grad[3:].abs().sum() > 0
    with torch.no_grad():  # and they are gone once the prompted forward is over
        torch.testing.assert_close(emb([SHORT])[0], backbone(kind, Pooling.MEAN)([SHORT])[0], atol=0, rtol=0)


def test_deep_prompt_rows_that_do_not_fit_the_layers_and_checkpointing_are_clear_errors():
    emb = deep_backbone("llama")
    with pytest.raises(ValueError, match=r"deep prompt .* rows, got 5"):
        emb([SHORT], prefix=torch.zeros(5, emb.hidden_size))
    with pytest.raises(ValueError, match="gradient checkpointing cannot recompute deep prompts"):
        emb.enable_gradient_checkpointing()
