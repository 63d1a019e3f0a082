"""The scores MTEB reports, computed from embeddings, with MTEB's definitions (checked against mteb 2.x).

- Retrieval: nDCG@10 (main), MRR@10, recall@100 of a cosine ranking of the whole corpus, as pytrec_eval
  (trec_eval) computes them; queries without a relevant document are dropped, as MTEB does.
- Reranking: MAP (mean over queries of average precision over the query's own candidates; MTEB's
  ``map_at_1000``) and MRR@10.
- STS: Spearman correlation between the gold scores and the cosine similarities (``cosine_spearman``).
- Classification: accuracy (main) and macro-F1 of a logistic regression (``max_iter=100``) trained on
  ``samples_per_label`` examples per label, averaged over ``n_experiments`` draws, exactly as MTEB draws them.
- Clustering: V-measure of mini-batch k-means with as many clusters as labels (MTEB's ClusteringEvaluator:
  batch 500, ``n_init="auto"``), averaged over several seeds; the first seed, 42, is MTEB's.
- Pair classification: average precision of the pair scores, the best of cosine, dot product and
  (negated) Euclidean and Manhattan distance (MTEB's ``max_ap``).

Rankings break ties as trec_eval does (higher score first, then the larger document id), so a tie cannot
make our numbers differ from MTEB's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) cosine similarities between the rows of ``a`` and ``b``."""
    return _unit(a) @ _unit(b).T


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    return np.einsum("ij,ij->i", _unit(a), _unit(b))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


# --------------------------------------------------------------------------- ranking


def top_k(scores: np.ndarray, doc_ids: Sequence[str], k: int) -> list[str]:
    """The ids of the ``k`` best-scored documents, best first; ties go to the larger id (trec_eval's rule)."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return []
    if k < n:
        kth = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth)  # every doc tied at the boundary competes on its id
    else:
        candidates = np.arange(n)
    ranked = sorted(candidates.tolist(), key=lambda i: (scores[i], doc_ids[i]), reverse=True)
    return [doc_ids[i] for i in ranked[:k]]


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gain: DCG = sum_{r<=k} rel(d_r) / log2(r + 1), over the DCG of the ideal order.

    The gain is the relevance grade itself (trec_eval's ``ndcg_cut``), not 2^rel - 1; grades <= 0 gain nothing.
    """
    gains = [max(relevance.get(d, 0), 0) for d in ranking[:k]]
    ideal = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    idcg = _dcg(ideal)
    return _dcg(gains) / idcg if idcg > 0 else 0.0


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def reciprocal_rank_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant (grade > 0) document within the top k, else 0."""
    for rank, doc in enumerate(ranking[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """|relevant among the top k| / |relevant|."""
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def average_precision(ranking: Sequence[str], relevance: Mapping[str, int]) -> float:
    """AP = (1/R) * sum over the ranks r of relevant documents of precision@r (R: number of relevant docs)."""
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranking, start=1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


def retrieval_scores(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    chunk: int = 256,
) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and recall@100 of ranking every document for every query by cosine similarity."""
    keep = [i for i, q in enumerate(query_ids) if any(g > 0 for g in qrels.get(q, {}).values())]
    per_query: dict[str, list[float]] = defaultdict(list)
    docs = _unit(doc_emb).astype(np.float32)
    for start in range(0, len(keep), chunk):
        rows = keep[start : start + chunk]
        sims = _unit(query_emb[rows]).astype(np.float32) @ docs.T
        for row, scores in zip(rows, sims, strict=True):
            rel = qrels[query_ids[row]]
            ranking = top_k(scores, doc_ids, 100)
            per_query["ndcg_at_10"].append(ndcg_at_k(ranking, rel, 10))
            per_query["mrr_at_10"].append(reciprocal_rank_at_k(ranking, rel, 10))
            per_query["recall_at_100"].append(recall_at_k(ranking, rel, 100))
    return {name: float(np.mean(vals)) for name, vals in per_query.items()} if keep else {}


def reranking_scores(
    query_emb: np.ndarray,
    candidate_emb: Sequence[np.ndarray],
    candidate_relevance: Sequence[Sequence[int]],
) -> dict[str, float]:
    """MAP and MRR@10 of ranking each query's own candidates by cosine similarity.

    ``candidate_emb[i]`` holds query i's candidates (positives and negatives), ``candidate_relevance[i]``
    their grades (1 for a positive, 0 for a negative). Candidates are named by position, with the
    positives first, which only matters for exact ties.
    """
    aps, rrs = [], []
    for q, cands, grades in zip(query_emb, candidate_emb, candidate_relevance, strict=True):
        scores = cosine_matrix(q[None, :], cands)[0]
        ids = [f"{j:06d}" for j in range(len(grades))]
        rel = dict(zip(ids, grades, strict=True))
        ranking = top_k(scores, ids, len(ids))
        aps.append(average_precision(ranking, rel))
        rrs.append(reciprocal_rank_at_k(ranking, rel, 10))
    return {"map": float(np.mean(aps)), "mrr_at_10": float(np.mean(rrs))}


# --------------------------------------------------------------------------- pairs


def sts_scores(emb1: np.ndarray, emb2: np.ndarray, gold: Sequence[float]) -> dict[str, float]:
    """Spearman (main) and Pearson correlation of the gold scores with the pairs' cosine similarities."""
    from scipy.stats import pearsonr, spearmanr

    cos = paired_cosine(emb1, emb2)
    return {
        "cosine_spearman": float(spearmanr(gold, cos)[0]),
        "cosine_pearson": float(pearsonr(gold, cos)[0]),
    }


def pair_classification_scores(emb1: np.ndarray, emb2: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
    """Average precision of each pair score at telling duplicates (1) from non-duplicates (0).

    AP = sum_n (R_n - R_{n-1}) P_n over the thresholds n of the ranked pairs (scikit-learn's definition,
    which MTEB uses). Distances are negated so that a higher score always means "more alike".
    """
    from sklearn.metrics import average_precision_score

    a, b = np.asarray(emb1, dtype=np.float64), np.asarray(emb2, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    pair_scores = {
        "cosine": paired_cosine(a, b),
        "dot": np.einsum("ij,ij->i", a, b),
        "euclidean": -np.linalg.norm(a - b, axis=1),
        "manhattan": -np.abs(a - b).sum(axis=1),
    }
    out = {f"{name}_ap": float(average_precision_score(y, s)) for name, s in pair_scores.items()}
    out["max_ap"] = max(out.values())
    return out


# --------------------------------------------------------------------------- labels


def undersample(labels: Sequence[object], samples_per_label: int, n_experiments: int, seed: int) -> list[list[int]]:
    """The training indices of each experiment, drawn as MTEB's ``_undersample_data`` draws them.

    Each experiment reshuffles the previous experiment's order with a fresh ``RandomState(seed)`` and keeps
    the first ``samples_per_label`` indices of every label; so the draws differ but are reproducible.
    """
    idxs = list(range(len(labels)))
    draws = []
    for _ in range(n_experiments):
        np.random.RandomState(seed).shuffle(idxs)
        counts: dict[object, int] = defaultdict(int)
        chosen = []
        for i in idxs:
            if counts[labels[i]] < samples_per_label:
                chosen.append(i)
                counts[labels[i]] += 1
        draws.append(chosen)
    return draws


def classification_scores(
    train_emb: np.ndarray,
    train_labels: Sequence[object],
    test_emb: np.ndarray,
    test_labels: Sequence[object],
    draws: Sequence[Sequence[int]],
    *,
    seed: int = 42,
    max_iter: int = 100,
) -> dict[str, float]:
    """Mean accuracy and macro-F1 (mean over classes of 2PR/(P+R)) of one logistic regression per draw.

    ``train_emb`` row i embeds ``train_labels[i]``'s text; ``draws`` are index lists into them (see
    :func:`undersample`).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    y_train = np.asarray(train_labels)
    accs, f1s = [], []
    for chosen in draws:
        clf = LogisticRegression(max_iter=max_iter, random_state=seed)
        clf.fit(train_emb[list(chosen)], y_train[list(chosen)])
        pred = clf.predict(test_emb)
        accs.append(accuracy_score(test_labels, pred))
        f1s.append(f1_score(test_labels, pred, average="macro"))
    return {"accuracy": float(np.mean(accs)), "f1": float(np.mean(f1s))}


def clustering_scores(
    emb: np.ndarray, labels: Sequence[object], seeds: Sequence[int] = (42, 43, 44, 45, 46), batch_size: int = 500
) -> dict[str, float]:
    """V-measure of mini-batch k-means (k = number of labels), mean and spread over ``seeds``.

    V = 2hc/(h+c), the harmonic mean of homogeneity h (each cluster holds one label) and completeness c
    (each label sits in one cluster); it ignores how clusters are numbered.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    k = len(set(labels))
    if k <= 1:
        return {"v_measure": 1.0, "v_measure_std": 0.0}  # one label: any clustering is perfect (as MTEB says)
    values = []
    for seed in seeds:
        km = MiniBatchKMeans(n_clusters=k, batch_size=batch_size, n_init="auto", random_state=seed)
        km.fit(np.asarray(emb))
        values.append(v_measure_score(labels, km.labels_))
    return {"v_measure": float(np.mean(values)), "v_measure_std": float(np.std(values))}
