"""Every metric against an example worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptembedder.evaluation import metrics as m

RANKING = ["d1", "d2", "d3", "d4"]
REL = {"d2": 2, "d4": 1, "d5": 1, "d6": 0}


def test_ndcg_linear_gain() -> None:
    # DCG@10 = 2/log2(3) + 1/log2(5) = 1.26186 + 0.43068 = 1.69254
    # IDCG@10 = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5 = 3.13093  -> 0.54059
    assert m.ndcg_at_k(RANKING, REL, 10) == pytest.approx(0.5405858, abs=1e-7)
    # @2: DCG = 1.26186, IDCG = 2 + 0.63093 -> 0.47962
    assert m.ndcg_at_k(RANKING, REL, 2) == pytest.approx(0.4796249, abs=1e-7)
    assert m.ndcg_at_k(RANKING, {"d9": 0}, 10) == 0.0


def test_mrr_recall_ap() -> None:
    assert m.reciprocal_rank_at_k(RANKING, REL, 10) == 0.5  # first relevant (d2) at rank 2
    assert m.reciprocal_rank_at_k(RANKING, REL, 1) == 0.0
    assert m.recall_at_k(RANKING, REL, 2) == pytest.approx(1 / 3)  # d2 of {d2, d4, d5}
    assert m.recall_at_k(RANKING, REL, 10) == pytest.approx(2 / 3)  # d5 never retrieved
    # AP = (P@2 + P@4) / 3 = (1/2 + 2/4) / 3 = 1/3; the unretrieved d5 counts in the denominator
    assert m.average_precision(RANKING, REL) == pytest.approx(1 / 3)


def test_top_k_breaks_ties_like_trec_eval() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    ids = ["a", "b", "c", "d"]
    assert m.top_k(scores, ids, 2) == ["b", "c"]  # a and c tie: the larger id wins
    assert m.top_k(scores, ids, 3) == ["b", "c", "a"]
    assert m.top_k(scores, ids, 10) == ["b", "c", "a", "d"]


def test_retrieval_scores() -> None:
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    qrels = {"q1": {"b": 1}, "q2": {"b": 1, "c": 1}, "q3": {"a": 0}}
    s = m.retrieval_scores(q, d, ["q1", "q2", "q3"], ["a", "b", "c"], qrels)
    # q1 ranks a (1), c (.71), b (0): nDCG = (1/log2 4) / 1 = 0.5, RR = 1/3.
    # q2 ranks b (1), c (.71), a: both relevant on top: nDCG 1, RR 1. q3 has no positive: dropped (as MTEB).
    assert s["ndcg_at_10"] == pytest.approx(0.75)
    assert s["mrr_at_10"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["recall_at_100"] == pytest.approx(1.0)


def test_reranking_map() -> None:
    q = np.array([[1.0, 0.0], [1.0, 0.0]])
    # query 1: positive cos .8, negatives cos 1 and 0 -> ranks neg, pos, neg: AP = 1/2, RR = 1/2
    # query 2: positive cos 1 first: AP = 1, RR = 1   -> MAP = 0.75, MRR = 0.75
    c1 = np.array([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]])
    c2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    s = m.reranking_scores(q, [c1, c2], [[1, 0, 0], [1, 0]])
    assert s == {"map": pytest.approx(0.75), "mrr_at_10": pytest.approx(0.75)}


def _at_cosines(cos: list[float]) -> tuple[np.ndarray, np.ndarray]:
    e1 = np.tile([1.0, 0.0], (len(cos), 1))
    e2 = np.array([[c, math.sqrt(1 - c * c)] for c in cos])
    return e1, e2


def test_sts_spearman() -> None:
    # gold ranks 1 2 3 4, cosine ranks 1 3 2 4: sum d^2 = 2, rho = 1 - 6*2 / (4*(16-1)) = 0.8
    e1, e2 = _at_cosines([0.1, 0.5, 0.3, 0.9])
    s = m.sts_scores(e1, e2, [1.0, 2.0, 3.0, 4.0])
    assert s["cosine_spearman"] == pytest.approx(0.8)


def test_pair_classification_ap() -> None:
    # cosines .9 .8 .3 .1 with labels 1 0 1 0: precision 1/1 at the first positive, 2/3 at the second
    # AP = (1 + 2/3) / 2 = 0.8333
    e1, e2 = _at_cosines([0.9, 0.8, 0.3, 0.1])
    s = m.pair_classification_scores(e1, e2, [1, 0, 1, 0])
    assert s["cosine_ap"] == pytest.approx(5 / 6)
    # unit vectors: dot = cosine and Euclidean distance is monotone in it, so the same AP
    assert s["dot_ap"] == pytest.approx(5 / 6) and s["euclidean_ap"] == pytest.approx(5 / 6)
    assert s["max_ap"] == max(s["cosine_ap"], s["dot_ap"], s["euclidean_ap"], s["manhattan_ap"])


def test_undersample_matches_mteb_draws() -> None:
    # RandomState(42).shuffle(range 6) -> [0,1,5,2,4,3]; again on that -> [0,1,3,5,4,2]
    draws = m.undersample(list("aaabbb"), samples_per_label=2, n_experiments=2, seed=42)
    assert draws == [[0, 1, 5, 4], [0, 1, 3, 5]]


def test_classification_accuracy_and_macro_f1() -> None:
    train = np.array([[0.0], [1.0], [10.0], [11.0]])
    test = np.array([[0.5], [10.5], [9.0]])
    s = m.classification_scores(train, list("aabb"), test, list("aba"), [[0, 1, 2, 3]])
    # predictions a, b, b: accuracy 2/3. F1(a) = 2*1*(1/2)/(3/2) = 2/3, F1(b) = 2*(1/2)*1/(3/2) = 2/3
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)


def test_clustering_v_measure() -> None:
    emb = np.array([[0.0], [0.1], [0.2], [10.0]])
    # k-means (k=2) splits {0, .1, .2} | {10}; labels a a b b.
    # h = 1 - H(C|K)/H(C) = 1 - (3/4 * H(2/3, 1/3)) / 1 = 0.311278
    # c = 1 - H(K|C)/H(K) = 1 - (1/2 * 1) / H(3/4, 1/4) = 0.383689;  V = 2hc/(h+c) = 0.343711
    s = m.clustering_scores(emb, list("aabb"), seeds=(42, 43, 44))
    assert s["v_measure"] == pytest.approx(0.3437110, abs=1e-6)
    assert s["v_measure_std"] == pytest.approx(0.0)
    assert m.clustering_scores(emb, list("aaaa"))["v_measure"] == 1.0
