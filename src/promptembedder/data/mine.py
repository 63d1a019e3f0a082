"""Hard negatives mined by the frozen Embedding LLM (``promptembedder data mine``).

For each task, its queries and its documents (every distinct positive and given negative) are embedded once
by the frozen backbone, plain; for each query the documents are ranked by cosine similarity and, after
dropping every positive of an example with the same (normalised) query and then skipping the ``skip`` nearest
of the rest (likely unlabelled positives), the next ``top_k`` become its ``mined_negatives``.

The backbone never changes while a PromptEmbedder trains, so negatives mined by it never go stale: a LoRA
embedder's mined negatives describe a model that no longer exists after its first steps.

This module only ranks; embedding is passed in (``embed``), so it needs no model and tests run it on
hand-made vectors.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from promptembedder.data.format import TrainExample
from promptembedder.data.text import normalise

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> (n, d) L2-normalised embeddings."""


@dataclass(frozen=True)
class MineSettings:
    top_k: int = 3
    """Mined negatives kept per query."""
    skip: int = 2
    """Nearest non-positive documents passed over first: the false-negative guard."""
    per_task: int | None = 2000
    """At most this many examples per task (a seeded draw); None: all."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.skip < 0 or (self.per_task is not None and self.per_task < 2):
            raise ValueError(f"mining needs top_k >= 1, skip >= 0 and per_task >= 2 (or all), got {self}")


def subsample(examples: Sequence[TrainExample], per_task: int | None, seed: int, task: str) -> list[TrainExample]:
    """A seeded draw of ``per_task`` examples in their file order (all of them if fewer)."""
    if per_task is None or len(examples) <= per_task:
        return list(examples)
    keep = sorted(random.Random(f"mine:{seed}:{task}").sample(range(len(examples)), per_task))
    return [examples[i] for i in keep]


def mine_task(
    examples: Sequence[TrainExample],
    embed_queries: Embed,
    embed_documents: Embed,
    settings: MineSettings,
) -> tuple[list[list[str]], dict[str, float]]:
    """Each example's mined negatives (in order), and a few statistics of the mining."""
    docs = list(dict.fromkeys(t for ex in examples for t in (ex.positive, *ex.negatives)))
    queries = list(dict.fromkeys(ex.query for ex in examples))
    q_index = {q: i for i, q in enumerate(queries)}
    d_index = {d: i for i, d in enumerate(docs)}
    q_vecs = np.asarray(embed_queries(queries), dtype=np.float32)
    d_vecs = np.asarray(embed_documents(docs), dtype=np.float32)
    answers: dict[str, set[int]] = defaultdict(set)  # normalised query -> every document that answers it
    for ex in examples:
        answers[normalise(ex.query)].add(d_index[ex.positive])
    sims = q_vecs @ d_vecs.T
    out: list[list[str]] = []
    rank_of_positive = []
    for ex in examples:
        row = sims[q_index[ex.query]]
        order = np.argsort(-row, kind="stable")
        banned = answers[normalise(ex.query)]
        rank_of_positive.append(int((row > row[d_index[ex.positive]]).sum()))
        kept = [int(j) for j in order if int(j) not in banned]
        out.append([docs[j] for j in kept[settings.skip : settings.skip + settings.top_k]])
    stats = {
        "examples": len(examples),
        "documents": len(docs),
        "positive_rank_median": float(np.median(rank_of_positive)) if rank_of_positive else float("nan"),
        "positive_top1": float(np.mean([r == 0 for r in rank_of_positive])) if rank_of_positive else float("nan"),
    }
    return out, stats
