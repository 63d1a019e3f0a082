import pytest
import torch

from promptembedder.alignment import (
    AlignmentMap,
    held_out_map_accuracy,
    least_squares_map,
    shared_anchors,
    surface_forms,
)

from tiny import make_tokenizer, tiny_embedding_model, tiny_prompting_lm


class _Tok:
    """Just enough of a tokenizer for surface_forms."""

    def __init__(self, vocab, special=()):
        self._vocab = vocab
        self.all_special_ids = [vocab[s] for s in special]

    def get_vocab(self):
        return dict(self._vocab)


def test_surface_forms_bring_tokenizer_families_to_one_spelling():
    bpe = _Tok({"<s>": 0, "\u0120the": 1, "cat": 2, "\u0120cat": 3}, special=["<s>"])
    spm = _Tok({"<bos>": 0, "\u2581the": 1, "\u2581cat": 2, "s": 3}, special=["<bos>"])
    wordpiece = _Tok({"[CLS]": 0, "the": 1, "##s": 2, "cat": 3, **{f"##x{i}": 4 + i for i in range(5)}}, ["[CLS]"])
    assert surface_forms(bpe) == {" the": 1, "cat": 2, " cat": 3}
    assert surface_forms(spm) == {" the": 1, " cat": 2, "s": 3}
    assert surface_forms(wordpiece)[" the"] == 1 and surface_forms(wordpiece)["s"] == 2
    src, tgt = shared_anchors(bpe, spm)
    assert dict(zip(src.tolist(), tgt.tolist(), strict=True)) == {1: 1, 3: 2}


def test_least_squares_recovers_a_known_affine_map():
    torch.manual_seed(0)
    x = torch.randn(500, 16)
    true_w, true_b = torch.randn(16, 24), torch.randn(24)
    w, b = least_squares_map(x, x @ true_w + true_b, ridge=0.0)
    torch.testing.assert_close(w, true_w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b, true_b, atol=1e-4, rtol=1e-4)


def test_held_out_map_accuracy_tells_a_linear_relation_from_noise():
    torch.manual_seed(0)
    x = torch.randn(400, 16)
    vocab = torch.randn(500, 24)
    ids = torch.randperm(500)[:400]
    related = x @ torch.randn(16, 24)  # the target rows of the shared tokens are a linear image of x
    vocab_related = vocab.clone()
    vocab_related[ids] = related
    assert held_out_map_accuracy(x, related, vocab_related, ids) == 1.0
    noise = held_out_map_accuracy(x, vocab[ids], vocab, ids)  # no relation: about chance, 1/500
    assert noise < 0.1
    with pytest.raises(ValueError, match="held_out"):
        held_out_map_accuracy(x, related, vocab_related, ids, held_out=1.0)


def test_vocab_init_maps_source_word_vectors_near_target_word_vectors():
    lm = tiny_prompting_lm()
    target, target_tokenizer = tiny_embedding_model("llama")
    source_tokenizer = make_tokenizer("plain")
    vocab_map = AlignmentMap(32, 48)
    anchors = vocab_map.init_from_vocabularies(lm, source_tokenizer, target, target_tokenizer)
    random_map = AlignmentMap(32, 48)
    assert anchors > 100 and vocab_map.num_anchors == anchors
    ids = torch.arange(6, 60)
    x, y = lm.get_input_embeddings().weight[ids], target.get_input_embeddings().weight[ids]
    with torch.no_grad():
        assert (vocab_map(x) - y).norm() < (random_map(x) - y).norm()


def test_too_few_anchors_is_a_clear_error():
    lm = tiny_prompting_lm()
    target, _ = tiny_embedding_model("llama")
    few = _Tok({"\u0120the": 6, "\u0120cat": 7}, special=[])
    with pytest.raises(ValueError, match="alignment_init='random'"):
        AlignmentMap(32, 48).init_from_vocabularies(lm, few, target, few)


def test_a_mixture_table_puts_shared_tokens_on_the_targets_own_rows():
    lm = tiny_prompting_lm()
    target, target_tokenizer = tiny_embedding_model("llama")
    source_tokenizer = make_tokenizer("plain")
    align = AlignmentMap(32, 48)
    align.init_from_vocabularies(lm, source_tokenizer, target, target_tokenizer)
    plain = AlignmentMap(32, 48)
    plain.load_state_dict(align.state_dict())
    shared = align.build_mixture_table(lm, source_tokenizer, target, target_tokenizer)
    src, tgt = shared_anchors(source_tokenizer, target_tokenizer)
    assert shared == len(src) and align.has_table and not plain.has_table
    vocab, rows = lm.get_input_embeddings().weight.detach(), target.get_input_embeddings().weight.detach()
    # A mixture of shared tokens (s = p @ E) lands on the same mixture of the target's rows for them, exactly;
    # the linear map alone only comes near.
    p = torch.zeros(3, vocab.shape[0])
    p[0, src[0]] = 1.0
    p[1, src[:4]] = 0.25
    p[2, src[5]], p[2, src[9]] = 0.7, 0.3
    want = torch.stack([rows[tgt[0]], rows[tgt[:4]].mean(0), 0.7 * rows[tgt[5]] + 0.3 * rows[tgt[9]]])
    with torch.no_grad():
        torch.testing.assert_close(align(p @ vocab, p), want, atol=1e-5, rtol=1e-5)
        assert (plain(p @ vocab) - want).norm() > 10 * (align(p @ vocab, p) - want).norm()
        # Weight on a token the target lacks goes through W alone, as without the table.
        lone = torch.zeros(1, vocab.shape[0])
        lone[0, sorted(set(range(vocab.shape[0])) - set(src.tolist()))[0]] = 1.0
        torch.testing.assert_close(align(lone @ vocab, lone), plain(lone @ vocab))
    with pytest.raises(ValueError, match="mixture weights"):
        align(p @ vocab)
    # The table is rebuilt from the vocabularies, never saved: the state dict is W's alone.
    assert sorted(align.state_dict()) == ["linear.bias", "linear.weight"]


def test_deep_rows_follow_the_first_layers_and_start_at_zero():
    """AlignmentMap(deep_layers=L): K rows of W, then L*K offsets layer by layer, all zero until trained."""
    align = AlignmentMap(6, 4, deep_layers=2)
    soft = torch.randn(2, 3, 6)
    rows = align(soft)
    assert rows.shape == (2, 9, 4)
    torch.testing.assert_close(rows[:, :3], align.linear(soft))
    assert rows[:, 3:].abs().sum() == 0 and align.deep_layers == 2
    with torch.no_grad():
        align.deep.normal_()
    rows = align(soft)
    torch.testing.assert_close(rows[:, 6:], soft @ align.deep[1])  # layer 2's offsets: s V_2
    with pytest.raises(ValueError, match="deep_layers must be >= 0"):
        AlignmentMap(6, 4, deep_layers=-1)
