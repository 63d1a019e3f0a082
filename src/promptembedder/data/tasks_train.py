"""The training sets, one builder per source. Hard negatives are taken only where the source itself
says the texts differ: other senses of the same word, neighbouring verses, packages of the same section."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from promptembedder.data.format import TrainExample
from promptembedder.data.sources.bible import VersePair
from promptembedder.data.sources.debian import Package
from promptembedder.data.sources.gcide import Entry
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.tasks_eval import INSTR_EXAMPLE_GLOSS, INSTR_VERSE_PARAPHRASE, lemma_index
from promptembedder.data.text import normalise, stable_hash

MAX_NEGATIVES = 3
RARE_DF = 3


@dataclass
class TrainSet:
    name: str
    source: str  # key of build.SOURCES
    description: str
    examples: list[TrainExample]


def _pick(rng: random.Random, candidates: list[str], positive: str) -> list[str]:
    """Up to MAX_NEGATIVES distinct candidates that differ from the positive, chosen with ``rng``."""
    pos = normalise(positive)
    uniq = list(dict.fromkeys(c for c in candidates if normalise(c) != pos))
    return uniq if len(uniq) <= MAX_NEGATIVES else rng.sample(uniq, MAX_NEGATIVES)


def wordnet_train(synsets: Sequence[Synset], heldout: set[str]) -> list[TrainSet]:
    train = [s for s in synsets if s.id not in heldout]
    idx = lemma_index(train)  # held-out glosses must not come back as negatives
    rng = random.Random("wordnet-train")
    words: list[TrainExample] = []
    examples: list[TrainExample] = []
    for s in train:
        other_senses = [o.definition for lemma in s.lemmas for o in idx[lemma.casefold()] if o.id != s.id]
        for lemma in s.lemmas:
            negs = [o.definition for o in idx[lemma.casefold()] if o.id != s.id]
            words.append(
                TrainExample(
                    "wordnet_word_gloss",
                    "Given a word, retrieve the dictionary definition of one of its senses",
                    lemma,
                    s.definition,
                    _pick(rng, negs, s.definition),
                )
            )
        for ex in s.examples:
            examples.append(
                TrainExample(
                    "wordnet_example_gloss",
                    INSTR_EXAMPLE_GLOSS,
                    ex,
                    s.definition,
                    _pick(rng, other_senses, s.definition),
                )
            )
    return [
        TrainSet(
            "wordnet_word_gloss",
            "wordnet",
            "Each lemma of each training synset -> its gloss; negatives: glosses of the lemma's other senses.",
            words,
        ),
        TrainSet(
            "wordnet_example_gloss",
            "wordnet",
            "Example sentences of training synsets -> the gloss; negatives: glosses of other senses of the "
            "synset's lemmas.",
            examples,
        ),
    ]


def gcide_train(entries: Sequence[Entry], heldout_lemmas: set[str]) -> tuple[TrainSet, dict[str, int]]:
    """Headword -> definition, one example per sense. Entries copied from WordNet, and every entry
    reachable from a lemma of a held-out synset, are left out so no WordNet answer leaks in."""
    kept: list[Entry] = []
    dropped = {"tagged WordNet": 0, "headword of a held-out synset": 0, "no definition": 0}
    for e in entries:
        if e.from_wordnet:
            dropped["tagged WordNet"] += 1
        elif any(w.casefold() in heldout_lemmas for w in (e.headword, *e.index_words)):
            dropped["headword of a held-out synset"] += 1
        elif not e.definitions:
            dropped["no definition"] += 1
        else:
            kept.append(e)
    senses: dict[str, list[str]] = defaultdict(list)
    for e in kept:
        senses[e.headword.casefold()].extend(e.definitions)
    rng = random.Random("gcide-train")
    out = [
        TrainExample(
            "gcide_word_definition",
            "Given a word, retrieve its definition from a dictionary",
            e.headword,
            d,
            _pick(rng, [o for o in senses[e.headword.casefold()] if o != d], d),
        )
        for e in kept
        for d in e.definitions
    ]
    desc = "GCIDE headword -> one definition per sense; negatives: the headword's other senses."
    return TrainSet("gcide_word_definition", "gcide", desc, out), dropped


def bible_train(ot: Sequence[VersePair]) -> TrainSet:
    """Old Testament KJV <-> WEB. The direction is chosen per verse by a hash, so both translations
    appear as queries without every verse appearing twice."""
    index = {(v.book, v.chapter, v.verse): v for v in ot}
    out = []
    for v in ot:
        kjv_first = int(stable_hash(f"direction:{v.ref}"), 16) % 2 == 0
        side = "web" if kjv_first else "kjv"
        neighbours = [index.get((v.book, v.chapter, v.verse + d)) for d in (-1, 1)]
        negs = [getattr(n, side) for n in neighbours if n is not None]
        query, positive = (v.kjv, v.web) if kjv_first else (v.web, v.kjv)
        pos = normalise(positive)
        negs = [n for n in negs if normalise(n) != pos]
        out.append(TrainExample("bible_ot_paraphrase", INSTR_VERSE_PARAPHRASE, query, positive, negs))
    desc = "Old Testament verses, KJV <-> WEB; negatives: the previous and next verse in the target translation."
    return TrainSet("bible_ot_paraphrase", "bible", desc, out)


def _template_keys(packages: Sequence[Package]) -> list[str]:
    """Each description with the words that name its package masked: those in the package name, and
    rare ones (in at most RARE_DF descriptions). Generated families (475 Rust crates "This package
    contains the source for the Rust X crate, ...", GCC cross-compilers per architecture) then share one
    key, while genuinely different descriptions keep their own."""
    tokens = [re.findall(r"[a-z0-9]+|[^a-z0-9\s]", p.description.casefold()) for p in packages]
    df: Counter[str] = Counter()
    for toks in tokens:
        df.update(set(toks))
    keys = []
    for p, toks in zip(packages, tokens, strict=True):
        own = set(re.split(r"[^a-z0-9]+", p.name.casefold()))
        key = " ".join("#" if df[t] <= RARE_DF or t in own else t for t in toks)
        keys.append(re.sub(r"#(?: [-_.+] #)+", "#", key))  # ab_glyph_rasterizer is one name, not three
    return keys


def debian_train(packages: Sequence[Package]) -> tuple[TrainSet, dict[str, int]]:
    """Summary -> long description. A description shared by several packages (exactly, or up to the
    rare words that name the package) and a summary shared by several are kept once, for the first
    package by name: one query with two answers, or one answer for two queries, teaches noise."""
    seen_desc: set[str] = set()
    seen_summary: set[str] = set()
    kept: list[Package] = []
    dropped = {"duplicate or templated description": 0, "duplicate summary": 0}
    for p, key in zip(packages, _template_keys(packages), strict=True):
        s = normalise(p.summary)
        if key in seen_desc:
            dropped["duplicate or templated description"] += 1
        elif s in seen_summary:
            dropped["duplicate summary"] += 1
        else:
            kept.append(p)
        seen_desc.add(key)
        seen_summary.add(s)
    by_section: dict[str, list[Package]] = defaultdict(list)
    for p in kept:
        by_section[p.section].append(p)
    out = []
    for section in sorted(by_section):
        group = by_section[section]  # in name order, so neighbours are related packages
        for i, p in enumerate(group):
            near = [group[j] for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(group)]
            negs = [n.description for n in near][:MAX_NEGATIVES]
            out.append(
                TrainExample(
                    "debian_summary_description",
                    "Given a Debian package summary, retrieve its full description",
                    p.summary,
                    p.description,
                    negs,
                )
            )
    desc = (
        "Debian package summary -> long description (snapshot of the apt lists); negatives: the packages "
        "next to it by name in the same section."
    )
    return TrainSet("debian_summary_description", "debian", desc, out), dropped
