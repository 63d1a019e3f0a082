"""Run one eval task against one encoder: pick the texts, embed them (through the cache), score.

Which side gets what: queries (retrieval, reranking) and every text of a symmetric task (STS, pair
classification, classification, clustering) go through ``encode_queries`` with the task's instruction, as
MTEB hands an instruction model its task prompt when no prompt type is given; documents and rerank
candidates go through ``encode_documents``, which is prompted or plain as the model's config says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from promptembedder.data import EvalTask
from promptembedder.evaluation import metrics
from promptembedder.evaluation.cache import EmbeddingCache
from promptembedder.evaluation.encoder import Encoder, Side, document_fingerprint, encode_sorted

MAIN_METRIC = {
    "retrieval": "ndcg_at_10",
    "reranking": "map",
    "sts": "cosine_spearman",
    "classification": "accuracy",
    "clustering": "v_measure",
    "pair_classification": "max_ap",
}


@dataclass
class EvalOptions:
    """How to run a task. ``max_corpus`` and ``limit`` subsample deterministically (same subset for every model)."""

    batch_size: int = 32
    max_corpus: int | None = None
    """Retrieval: most corpus documents kept; every document judged for a kept query always stays."""
    limit: int | None = None
    """Most queries / samples / pairs / test items / clustering items per task."""
    max_chars: int | None = None
    """Cut every text to about this many characters (at a word boundary) before embedding: a cost cap for
    long documents on a CPU. None embeds texts whole (each model still truncates at its own max length)."""
    seed: int = 42
    samples_per_label: int = 8
    n_experiments: int = 10
    clustering_seeds: int = 5
    progress: bool | None = None


@dataclass
class TaskResult:
    task: str
    task_type: str
    main_metric: str
    main_score: float
    scores: dict[str, float]
    size: dict[str, int]
    subsampled: dict[str, list[int]] = field(default_factory=dict)
    """What was cut: ``{"corpus": [kept, total], ...}``; empty when the task ran whole."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Embedder:
    """Embeds lists of unique texts for one (encoder, task) pair, through the cache."""

    def __init__(
        self, encoder: Encoder, fingerprint: str, task: EvalTask, cache: EmbeddingCache | None, options: EvalOptions
    ) -> None:
        self.encoder, self.fingerprint, self.task = encoder, fingerprint, task
        self.document_fingerprint = document_fingerprint(encoder)
        self.cache = cache or EmbeddingCache(enabled=False)
        self.options = options
        self.truncated: set[str] = set()

    def __call__(self, texts: Sequence[str], side: Side) -> np.ndarray:
        """Embeddings of ``texts`` in order; each distinct text is encoded once."""
        if self.options.max_chars is not None:
            cut = [_cut(t, self.options.max_chars) for t in texts]
            self.truncated.update(t for t, c in zip(texts, cut, strict=True) if c != t)
            texts = cut
        unique = list(dict.fromkeys(texts))
        instruction = self.task.instruction or None

        def compute() -> np.ndarray:
            return encode_sorted(
                self.encoder,
                unique,
                side=side,
                instruction=instruction,
                batch_size=self.options.batch_size,
                progress=self.options.progress,
                desc=f"{self.task.name} {'queries' if side == 'query' else 'documents'}",
            )

        key, key_instruction = self.fingerprint, instruction
        if getattr(self.encoder, "ignores_instruction", False):
            key_instruction = None  # the same vectors under any instruction: a withheld wording costs nothing
        if side == "document" and self.document_fingerprint:
            # Plain documents depend on the backbone alone: share them with every encoder that has it.
            key, key_instruction = f"doc-{self.document_fingerprint}", None
        emb = self.cache.get_or_compute(key, self.task.data_hash, side, key_instruction, unique, compute)
        where = {t: i for i, t in enumerate(unique)}
        return emb[[where[t] for t in texts]]


def _cut(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, at the last space when one is in the second half."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space] if space > max_chars // 2 else head


def _pick(n: int, limit: int | None, rng: np.random.Generator) -> list[int]:
    """Sorted indices of a uniform sample of ``limit`` out of ``n`` (all when no limit applies)."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(rng.choice(n, size=limit, replace=False).tolist())


def evaluate_task(
    encoder: Encoder,
    task: EvalTask,
    *,
    cache: EmbeddingCache | None = None,
    options: EvalOptions | None = None,
    fingerprint: str | None = None,
) -> TaskResult:
    """Score ``encoder`` on ``task`` with the task type's MTEB metrics (see :mod:`.metrics`)."""
    options = options or EvalOptions()
    embed = _Embedder(encoder, fingerprint or encoder.fingerprint(), task, cache, options)
    rng = np.random.default_rng(options.seed)
    start = time.perf_counter()
    runner = _RUNNERS.get(task.task_type)
    if runner is None:
        raise ValueError(f"task {task.name!r} has unknown task_type {task.task_type!r}")
    scores, size, cut = runner(task, embed, options, rng)
    if embed.truncated:
        size["truncated_texts"] = len(embed.truncated)
    main = MAIN_METRIC[task.task_type]
    return TaskResult(
        task.name, task.task_type, main, scores[main], scores, size, cut, round(time.perf_counter() - start, 3)
    )


Outcome = tuple[dict[str, float], dict[str, int], dict[str, list[int]]]


def _retrieval(task: EvalTask, embed: _Embedder, options: EvalOptions, rng: np.random.Generator) -> Outcome:
    query_ids = sorted(task.queries)
    query_ids = [query_ids[i] for i in _pick(len(query_ids), options.limit, rng)]
    doc_ids = list(task.corpus)
    cut: dict[str, list[int]] = {}
    if len(query_ids) < len(task.queries):
        cut["queries"] = [len(query_ids), len(task.queries)]
    if options.max_corpus is not None and options.max_corpus < len(doc_ids):
        judged = {d for q in query_ids for d in task.qrels.get(q, {})}
        others = [i for i, d in enumerate(doc_ids) if d not in judged]
        room = max(options.max_corpus - len(judged), 0)
        keep = {others[i] for i in _pick(len(others), room, rng)}
        doc_ids = [d for i, d in enumerate(doc_ids) if d in judged or i in keep]
        cut["corpus"] = [len(doc_ids), len(task.corpus)]
    q = embed([task.queries[i] for i in query_ids], "query")
    d = embed([task.corpus[i] for i in doc_ids], "document")
    scores = metrics.retrieval_scores(q, d, query_ids, doc_ids, task.qrels)
    return scores, {"queries": len(query_ids), "corpus": len(doc_ids)}, cut


def _reranking(task: EvalTask, embed: _Embedder, options: EvalOptions, rng: np.random.Generator) -> Outcome:
    samples = [task.samples[i] for i in _pick(len(task.samples), options.limit, rng)]
    cut = {"samples": [len(samples), len(task.samples)]} if len(samples) < len(task.samples) else {}
    q = embed([s.query for s in samples], "query")
    flat = [t for s in samples for t in (*s.positive, *s.negative)]
    c = embed(flat, "document")
    cands, grades, at = [], [], 0
    for s in samples:
        n = len(s.positive) + len(s.negative)
        cands.append(c[at : at + n])
        grades.append([1] * len(s.positive) + [0] * len(s.negative))
        at += n
    return metrics.reranking_scores(q, cands, grades), {"samples": len(samples), "candidates": len(flat)}, cut


def _pairs(task: EvalTask, embed: _Embedder, options: EvalOptions, rng: np.random.Generator) -> Outcome:
    pairs = [task.pairs[i] for i in _pick(len(task.pairs), options.limit, rng)]
    cut = {"pairs": [len(pairs), len(task.pairs)]} if len(pairs) < len(task.pairs) else {}
    # Both sides in one call: shared texts are embedded once and the instruction applies to both alike.
    both = embed([p.text1 for p in pairs] + [p.text2 for p in pairs], "query")
    e1, e2 = both[: len(pairs)], both[len(pairs) :]
    if task.task_type == "sts":
        scores = metrics.sts_scores(e1, e2, [p.score for p in pairs])
    else:
        scores = metrics.pair_classification_scores(e1, e2, [p.label for p in pairs])
    return scores, {"pairs": len(pairs)}, cut


def _classification(task: EvalTask, embed: _Embedder, options: EvalOptions, rng: np.random.Generator) -> Outcome:
    train, test_all = task.split_items("train"), task.split_items("test")
    test = [test_all[i] for i in _pick(len(test_all), options.limit, rng)]
    cut = {"test": [len(test), len(test_all)]} if len(test) < len(test_all) else {}
    draws = metrics.undersample(
        [it.label for it in train], options.samples_per_label, options.n_experiments, options.seed
    )
    # Only the training items some draw uses are embedded (as MTEB does): the rest would be wasted work.
    used = sorted(set().union(*draws))
    pos = {i: j for j, i in enumerate(used)}
    train_emb = embed([train[i].text for i in used], "query")
    test_emb = embed([it.text for it in test], "query")
    scores = metrics.classification_scores(
        train_emb,
        [train[i].label for i in used],
        test_emb,
        [it.label for it in test],
        [[pos[i] for i in draw] for draw in draws],
        seed=options.seed,
    )
    return scores, {"train_used": len(used), "train": len(train), "test": len(test)}, cut


def _clustering(task: EvalTask, embed: _Embedder, options: EvalOptions, rng: np.random.Generator) -> Outcome:
    items = [task.items[i] for i in _pick(len(task.items), options.limit, rng)]
    cut = {"items": [len(items), len(task.items)]} if len(items) < len(task.items) else {}
    emb = embed([it.text for it in items], "query")
    seeds = [options.seed + i for i in range(max(1, options.clustering_seeds))]
    scores = metrics.clustering_scores(emb, [it.label for it in items], seeds=seeds)
    return scores, {"items": len(items), "labels": len({it.label for it in items})}, cut


_RUNNERS = {
    "retrieval": _retrieval,
    "reranking": _reranking,
    "sts": _pairs,
    "pair_classification": _pairs,
    "classification": _classification,
    "clustering": _clustering,
}
