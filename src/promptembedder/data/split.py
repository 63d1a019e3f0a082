"""Keeping evaluation honest: which WordNet synsets are held out, how classification sets are split, and
the guard that keeps every held-out text out of training."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from promptembedder.data.format import TrainExample
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.text import normalise, stable_hash

T = TypeVar("T")

# Held-out texts this long are also looked for inside training texts, not only as whole texts; shorter
# ones ("able to swim") occur innocently inside longer sentences.
CONTAIN_MIN_WORDS = 8


class LeakageError(RuntimeError):
    """A held-out text occurs in training data; the build stops rather than publish a leaky split."""


def heldout_synsets(synsets: Sequence[Synset], n: int) -> set[str]:
    """``n`` synsets that have examples, chosen by a hash of their id: stable, and spread over the
    whole of WordNet rather than clustered in one part of speech or one lexicographer file."""
    with_examples = sorted((stable_hash(f"heldout:{s.id}"), s.id) for s in synsets if s.examples)
    if len(with_examples) < n:
        raise ValueError(f"only {len(with_examples)} synsets have examples, cannot hold out {n}")
    return {sid for _, sid in with_examples[:n]}


def stratified_split(
    items: Sequence[T], label: Callable[[T], str], text: Callable[[T], str], seed: str, test_fraction: float
) -> list[str]:
    """A "train"/"test" tag per item, the same share of each label going to test.

    Every label with two or more items gets at least one item on each side, so the probe sees every
    class it is asked about.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_label[label(it)].append(i)
    tags = ["train"] * len(items)
    for lab in sorted(by_label):
        idx = sorted(by_label[lab], key=lambda i: text(items[i]))
        random.Random(f"{seed}:{lab}").shuffle(idx)
        n_test = round(len(idx) * test_fraction)
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        for i in idx[:n_test]:
            tags[i] = "test"
    return tags


@dataclass
class LeakGuard:
    """Held-out texts, indexed so that training texts can be checked against them quickly.

    A training text leaks when, after case-folding and collapsing whitespace, it equals a held-out text,
    or contains a held-out text of at least ``CONTAIN_MIN_WORDS`` words.
    """

    exact: set[str] = field(default_factory=set)
    normalised: set[str] = field(default_factory=set)
    # first CONTAIN_MIN_WORDS words of a long held-out text -> the whole normalised texts starting so
    prefixes: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # normalised text -> which eval set holds it

    def add(self, texts: Iterable[str], origin: str) -> None:
        for text in texts:
            norm = normalise(text)
            self.exact.add(text)
            self.normalised.add(norm)
            self.origin.setdefault(norm, origin)
            words = norm.split()
            if len(words) >= CONTAIN_MIN_WORDS:
                self.prefixes.setdefault(tuple(words[:CONTAIN_MIN_WORDS]), []).append(norm)

    def __len__(self) -> int:
        return len(self.normalised)

    def find(self, text: str) -> str | None:
        """The held-out text that ``text`` leaks, or None."""
        if text in self.exact:
            return text
        norm = normalise(text)
        if norm in self.normalised:
            return norm
        words = norm.split()
        k = CONTAIN_MIN_WORDS
        if len(words) <= k or not self.prefixes:
            return None
        padded = f" {norm} "
        for i in range(len(words) - k + 1):
            hits = self.prefixes.get(tuple(words[i : i + k]))
            if hits:
                for held in hits:
                    if f" {held} " in padded:
                        return held
        return None

    def filter(self, examples: Iterable[TrainExample], dropped: dict[str, int]) -> list[TrainExample]:
        """Drop examples whose query or positive leaks; drop single leaking negatives. ``dropped``
        counts both. Negatives equal to the positive are dropped too (they would be false negatives)."""
        out: list[TrainExample] = []
        cache: dict[str, bool] = {}

        def leaks(t: str) -> bool:
            if t not in cache:
                cache[t] = self.find(t) is not None
            return cache[t]

        for ex in examples:
            if leaks(ex.query) or leaks(ex.positive):
                dropped["examples"] = dropped.get("examples", 0) + 1
                continue
            pos = normalise(ex.positive)
            negs = [n for n in ex.negatives if not leaks(n) and normalise(n) != pos]
            mined = [n for n in ex.mined_negatives if not leaks(n) and normalise(n) != pos]
            if len(negs) != len(ex.negatives) or len(mined) != len(ex.mined_negatives):
                lost = len(ex.negatives) - len(negs) + len(ex.mined_negatives) - len(mined)
                dropped["negatives"] = dropped.get("negatives", 0) + lost
                ex = dataclasses.replace(ex, negatives=negs, mined_negatives=mined)
            out.append(ex)
        return out

    def verify(self, examples: Iterable[TrainExample], where: str) -> int:
        """Raise :class:`LeakageError` if any text of any example leaks; return how many texts were read."""
        seen: set[str] = set()
        bad: list[str] = []
        for ex in examples:
            texts = [("query", ex.query), ("positive", ex.positive), *(("negative", n) for n in ex.negatives)]
            texts += [("mined negative", n) for n in ex.mined_negatives]
            for fld, text in texts:
                if text in seen:
                    continue
                seen.add(text)
                held = self.find(text)
                if held is not None:
                    bad.append(
                        f"{where}: {fld} {text[:80]!r} contains held-out text from "
                        f"{self.origin.get(held, '?')}: {held[:80]!r}"
                    )
        if bad:
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise LeakageError("held-out text found in training data:\n  " + "\n  ".join(bad[:5]) + more)
        return len(seen)
