"""The training sets, one builder per task (22 tasks over 10 sources).

Every example carries its task's canonical instruction (``TRAIN_INSTRUCTIONS[task][0]``; the trainer
draws the others). Hard negatives are taken only where the source itself says a text is wrong for the
query: another verse, another section, a sibling concept. Where a text would answer the instruction
just as well (a bare headword's other senses, a second synonym), it is not a negative: such examples
get negatives from unrelated entries instead, so the loss never pushes a right answer away.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from promptembedder.data.format import TrainExample
from promptembedder.data.instructions import TRAIN_INSTRUCTIONS
from promptembedder.data.sources.bible import VersePair
from promptembedder.data.sources.debian import Package
from promptembedder.data.sources.dictd import DevilEntry, Element
from promptembedder.data.sources.fortunes import CATEGORIES, Fortune
from promptembedder.data.sources.gcide import Entry
from promptembedder.data.sources.manpages import ManPage
from promptembedder.data.sources.pydoc import PyFunction
from promptembedder.data.sources.sword import Note, Topic
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.tasks_eval import lemma_index
from promptembedder.data.text import normalise, stable_hash

MAX_NEGATIVES = 3
RARE_DF = 3
# Past this a task is sampled down (by a stable hash, so the same examples every build): the biggest
# sources would otherwise drown the small ones and slow the build for little gain.
MAX_EXAMPLES = 20_000
# Commentary notes on longer passages pair a page of commentary with a chapter of text.
MAX_NOTE_VERSES = 8
MAX_NOTE_CHARS = 1500


@dataclass
class TrainSet:
    name: str
    source: str  # key of build.SOURCES
    description: str
    examples: list[TrainExample]


def example(task: str, query: str, positive: str, negatives: Sequence[str] = ()) -> TrainExample:
    """A training example with the task's canonical instruction; negatives equal to the positive (after
    normalising) or repeated are dropped, and at most MAX_NEGATIVES kept, in the order given."""
    pos = normalise(positive)
    negs = list(dict.fromkeys(n for n in negatives if normalise(n) != pos))[:MAX_NEGATIVES]
    return TrainExample(task, TRAIN_INSTRUCTIONS[task][0], query, positive, negs)


def _pick(rng: random.Random, candidates: list[str], positive: str) -> list[str]:
    """Up to MAX_NEGATIVES distinct candidates that differ from the positive, chosen with ``rng``."""
    pos = normalise(positive)
    uniq = list(dict.fromkeys(c for c in candidates if normalise(c) != pos))
    return uniq if len(uniq) <= MAX_NEGATIVES else rng.sample(uniq, MAX_NEGATIVES)


def _unrelated(
    rng: random.Random, pool: Sequence[str], bad: Callable[[str], bool], k: int = MAX_NEGATIVES
) -> list[str]:
    """Up to ``k`` distinct texts drawn from ``pool`` for which ``bad`` is false (a bounded number of draws,
    so a pool that is mostly bad gives fewer rather than looping)."""
    out: list[str] = []
    for _ in range(8 * k):
        if len(out) == k or not pool:
            break
        t = pool[rng.randrange(len(pool))]
        if t not in out and not bad(t):
            out.append(t)
    return out


def finish(ts: TrainSet, cap: int = MAX_EXAMPLES) -> TrainSet:
    """Drop repeated (query, positive) pairs, then sample down to ``cap`` by a stable hash, keeping order."""
    seen: set[tuple[str, str]] = set()
    uniq = []
    for ex in ts.examples:
        key = (normalise(ex.query), normalise(ex.positive))
        if key not in seen:
            seen.add(key)
            uniq.append(ex)
    if len(uniq) > cap:
        keep = set(
            sorted(range(len(uniq)), key=lambda i: stable_hash(f"{ts.name}:{uniq[i].query}\0{uniq[i].positive}"))[:cap]
        )
        uniq = [ex for i, ex in enumerate(uniq) if i in keep]
    ts.examples = uniq
    return ts


def _unique_by(items: Sequence, key: Callable[[object], Hashable]) -> list:
    """Items whose key occurs once: a text shared by two entries would be a right answer for both."""
    counts = Counter(key(it) for it in items)
    return [it for it in items if counts[key(it)] == 1]


# ---------------------------------------------------------------- WordNet


def wordnet_train(synsets: Sequence[Synset], heldout: set[str]) -> list[TrainSet]:
    train = [s for s in synsets if s.id not in heldout]
    by_id = {s.id: s for s in train}
    idx = lemma_index(train)  # held-out glosses must not come back as negatives
    rng = random.Random("wordnet-train")
    by_topic: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in train:
        by_topic[(s.pos, s.lexname)].append(s.definition)
    hyponyms: dict[str, list[Synset]] = defaultdict(list)
    for s in train:
        for h in s.hypernyms:
            hyponyms[h].append(s)
    all_lemmas = [lemma for s in train for lemma in s.lemmas]

    words, examples, synonyms, hypernyms, reverse = [], [], [], [], []
    for s in train:
        senses_of = {lemma: {o.id for o in idx[lemma.casefold()]} for lemma in s.lemmas}
        other_senses = [o.definition for lemma in s.lemmas for o in idx[lemma.casefold()] if o.id != s.id]
        topic = by_topic[(s.pos, s.lexname)]
        for lemma in s.lemmas:
            # Other senses of a bare headword answer "a definition of one of its senses" too: negatives
            # are glosses of other words on the same topic that the lemma has no sense in.
            own = {normalise(by_id[i].definition) for i in senses_of[lemma]}
            negs = _unrelated(rng, topic, lambda d, own=own: normalise(d) in own)
            words.append(example("wordnet_word_gloss", lemma, s.definition, negs))
        for ex in s.examples:
            examples.append(example("wordnet_example_gloss", ex, s.definition, _pick(rng, other_senses, s.definition)))
        if len(s.lemmas) > 1:
            for i, lemma in enumerate(s.lemmas):
                # Any lemma sharing a synset with any sense of the word is a right answer, not a negative.
                syn = {o.casefold() for sid in senses_of[lemma] for o in by_id[sid].lemmas}
                partner = s.lemmas[(i + 1) % len(s.lemmas)]
                negs = _unrelated(rng, all_lemmas, lambda w, syn=syn: w.casefold() in syn)
                synonyms.append(example("wordnet_word_synonym", lemma, partner, negs))
        ancestors = [by_id[h] for h in s.hypernyms if h in by_id]
        if ancestors:
            up = {h.id for h in ancestors}
            siblings = [o.definition for h in ancestors for o in hyponyms[h.id] if o.id != s.id and o.id not in up]
            negs = _pick(rng, siblings, ancestors[0].definition)
            hypernyms.append(example("wordnet_gloss_hypernym", s.definition, ancestors[0].definition, negs))
        reverse.append((s, ", ".join(s.lemmas)))

    # A gloss shared by two synsets ("a variety of aster") has two right lemma lists: left out.
    shared = Counter(normalise(s.definition) for s, _ in reverse)
    rev_pool = [text for _, text in reverse]
    gloss_word = []
    for s, text in reverse:
        if shared[normalise(s.definition)] > 1:
            continue
        mine = {lemma.casefold() for lemma in s.lemmas}

        def overlaps(t: str, mine: set[str] = mine) -> bool:
            return bool(mine & {w.casefold() for w in t.split(", ")})

        broader = [", ".join(by_id[h].lemmas) for h in s.hypernyms if h in by_id][:1]  # close but wrong
        negs = [n for n in broader if not overlaps(n)] + _unrelated(rng, rev_pool, overlaps)
        gloss_word.append(example("wordnet_gloss_word", s.definition, text, negs))

    def ts(name: str, desc: str, items: list[TrainExample]) -> TrainSet:
        return TrainSet(name, "wordnet", desc, items)

    return [
        ts(
            "wordnet_word_gloss",
            "Each lemma of each training synset -> its gloss; negatives: glosses of other words of the same "
            "part of speech and lexicographer file in which the lemma has no sense (its other senses would be "
            "right answers too).",
            words,
        ),
        ts(
            "wordnet_example_gloss",
            "Example sentences of training synsets -> the gloss; negatives: glosses of other senses of the "
            "synset's lemmas.",
            examples,
        ),
        ts(
            "wordnet_word_synonym",
            "A lemma -> the next lemma of the same synset; negatives: lemmas that share no synset with any "
            "sense of the query.",
            synonyms,
        ),
        ts(
            "wordnet_gloss_hypernym",
            "A gloss -> the gloss of its (first) hypernym; negatives: glosses of its siblings (other hyponyms "
            "of its hypernyms), never a hypernym.",
            hypernyms,
        ),
        ts(
            "wordnet_gloss_word",
            "Reverse dictionary: a gloss -> the synset's lemmas as text; negatives: the hypernym's lemmas and "
            "lemma lists sharing no lemma with the answer. Glosses shared by several synsets are left out.",
            gloss_word,
        ),
    ]


# ---------------------------------------------------------------- GCIDE


def gcide_train(entries: Sequence[Entry], heldout_lemmas: set[str]) -> tuple[list[TrainSet], dict[str, int]]:
    """Headword -> definition and back. Entries copied from WordNet, and every entry reachable from a
    lemma of a held-out synset, are left out so no WordNet answer leaks in."""
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
    senses: dict[str, set[str]] = defaultdict(set)
    for e in kept:
        senses[e.headword.casefold()].update(normalise(d) for d in e.definitions)
    pairs = [(e.headword, d) for e in kept for d in e.definitions]
    defs = [d for _, d in pairs]
    heads = sorted({h for h, _ in pairs})
    rng = random.Random("gcide-train")
    forward = []
    for head, d in pairs:
        own = senses[head.casefold()]  # every sense of the headword is a right answer
        forward.append(
            example("gcide_word_definition", head, d, _unrelated(rng, defs, lambda t, own=own: normalise(t) in own))
        )
    # Reverse: a definition printed under two headwords ("Same as Color.") has two answers; left out.
    owners: dict[str, set[str]] = defaultdict(set)
    for head, d in pairs:
        owners[normalise(d)].add(head.casefold())
    backward = []
    for head, d in pairs:
        if len(owners[normalise(d)]) == 1 and len(d.split()) >= 3:
            negs = _unrelated(rng, heads, lambda h, head=head: h.casefold() == head.casefold())
            backward.append(example("gcide_definition_word", d, head, negs))
    return [
        TrainSet(
            "gcide_word_definition",
            "gcide",
            "GCIDE headword -> one definition per sense; negatives: definitions of other headwords (never the "
            "headword's other senses, which answer the query as well).",
            forward,
        ),
        TrainSet(
            "gcide_definition_word",
            "gcide",
            "Reverse dictionary: a GCIDE definition of three or more words -> its headword; negatives: other "
            "headwords. Definitions printed under several headwords are left out.",
            backward,
        ),
    ], dropped


# ---------------------------------------------------------------- Bible


def bible_train(ot: Sequence[VersePair]) -> list[TrainSet]:
    """Old Testament KJV <-> WEB, and verse -> next verse. The paraphrase direction is chosen per verse
    by a hash, so both translations appear as queries without every verse appearing twice."""
    index = {(v.book, v.chapter, v.verse): v for v in ot}
    para = []
    for v in ot:
        kjv_first = int(stable_hash(f"direction:{v.ref}"), 16) % 2 == 0
        side = "web" if kjv_first else "kjv"
        neighbours = [index.get((v.book, v.chapter, v.verse + d)) for d in (-1, 1)]
        negs = [getattr(n, side) for n in neighbours if n is not None]
        query, positive = (v.kjv, v.web) if kjv_first else (v.web, v.kjv)
        para.append(example("bible_ot_paraphrase", query, positive, negs))
    nxt = []
    for a, b in zip(ot, ot[1:], strict=False):
        if a.book != b.book:
            continue  # the last verse of a book is followed by nothing
        # Close but wrong: the verse before the query, and the one after the answer.
        before = index.get((a.book, a.chapter, a.verse - 1))
        after = index.get((b.book, b.chapter, b.verse + 1))
        negs = [n.kjv for n in (before, after) if n is not None and n.kjv != a.kjv]
        nxt.append(example("bible_ot_next_verse", a.kjv, b.kjv, negs))
    return [
        TrainSet(
            "bible_ot_paraphrase",
            "bible",
            "Old Testament verses, KJV <-> WEB; negatives: the previous and next verse in the target translation.",
            para,
        ),
        TrainSet(
            "bible_ot_next_verse",
            "bible",
            "Old Testament (KJV): a verse -> the verse that follows it in the same book; negatives: the verse "
            "before the query and the verse after the answer.",
            nxt,
        ),
    ]


def _kjv_range(index: dict[tuple[str, int, int], VersePair], book: str, chapter: int, first: int, last: int) -> str:
    verses = [index.get((book, chapter, v)) for v in range(first, last + 1)]
    return " ".join(v.kjv for v in verses) if all(verses) else ""


def _trim(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut after the last full sentence that fits."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("; "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > limit // 3 else cut.rsplit(" ", 1)[0]


def commentary_train(notes: Sequence[Note], ot: Sequence[VersePair]) -> TrainSet:
    """Matthew Henry's note -> the KJV text of the passage it comments on (Old Testament only)."""
    index = {(v.book, v.chapter, v.verse): v for v in ot}
    usable = [n for n in notes if n.testament == "ot" and n.last - n.first < MAX_NOTE_VERSES]
    texts = [_kjv_range(index, n.book, n.chapter, n.first, n.last) for n in usable]
    out = []
    for i, (n, text) in enumerate(zip(usable, texts, strict=True)):
        if not text:
            continue
        # The passages just before and after, in the same book: close in content, wrong in place.
        near = [texts[j] for j in (i - 1, i + 1, i - 2) if 0 <= j < len(usable) and usable[j].book == n.book]
        out.append(example("bible_commentary_verse", _trim(n.text, MAX_NOTE_CHARS), text, [t for t in near if t]))
    desc = (
        f"Matthew Henry's Concise Commentary: a note (cut to {MAX_NOTE_CHARS} characters at a sentence end) -> "
        f"the KJV text of the Old Testament passage of at most {MAX_NOTE_VERSES} verses it explains; negatives: "
        "the neighbouring passages of the same book. New Testament notes are never used."
    )
    return TrainSet("bible_commentary_verse", "mhcc", desc, out)


def topic_train(topics: Sequence[Topic], ot: Sequence[VersePair]) -> TrainSet:
    """Nave's topic and subtopic -> one Old Testament verse listed under it (chosen by a hash)."""
    index = {f"{v.book}.{v.chapter}.{v.verse}": v.kjv for v in ot}
    listed: dict[str, set[str]] = defaultdict(set)  # topic -> every verse text listed anywhere under it
    for t in topics:
        listed[t.topic].update(index[r] for r in t.refs if r in index)
    pool = sorted(set(index.values()))
    rng = random.Random("nave-train")
    out = []
    for t in topics:
        refs = [r for r in t.refs if r in index]
        if not refs:
            continue
        ref = min(refs, key=lambda r: stable_hash(f"nave:{t.topic}:{t.subtopic}:{r}"))
        own = listed[t.topic]
        negs = _unrelated(rng, pool, lambda v, own=own: v in own)
        out.append(example("bible_topic_verse", f"{t.topic}: {t.subtopic}", index[ref], negs))
    desc = (
        "Nave's Topical Bible: 'Topic: subtopic' -> the KJV text of one Old Testament verse listed under it; "
        "negatives: verses not listed anywhere under the topic. New Testament references are never used."
    )
    return TrainSet("bible_topic_verse", "naves", desc, out)


# ---------------------------------------------------------------- Debian

# Debian archive sections, described in words for the section-label task. Sections that say nothing
# about the package (misc, oldlibs, metapackages, tasks, debug, introspection, localization) are left out.
SECTION_LABELS: dict[str, str] = {
    "admin": "a system administration tool",
    "cli-mono": "software for the Mono / .NET common language infrastructure",
    "comm": "communication software for modems, faxes and serial lines",
    "database": "a database server or client tool",
    "devel": "a software development tool",
    "doc": "documentation",
    "editors": "a text editor or word processor",
    "education": "educational software",
    "electronics": "electronics and circuit design software",
    "embedded": "software for embedded devices",
    "fonts": "a font package",
    "games": "a game",
    "gnome": "part of the GNOME desktop environment",
    "gnu-r": "a package for the GNU R statistical computing language",
    "gnustep": "part of the GNUstep environment",
    "golang": "a library for the Go programming language",
    "graphics": "graphics and image software",
    "hamradio": "amateur (ham) radio software",
    "haskell": "a Haskell library or tool",
    "httpd": "a web server or web server module",
    "interpreters": "an interpreter for a programming or scripting language",
    "java": "a Java library or tool",
    "javascript": "a JavaScript library or tool",
    "kde": "part of the KDE desktop environment",
    "kernel": "the operating system kernel, its modules or kernel tools",
    "libdevel": "development files (headers) for a library",
    "libs": "a shared library",
    "lisp": "a Lisp or Emacs Lisp package",
    "mail": "email software: mail clients, servers or filters",
    "math": "mathematics software",
    "net": "networking software: daemons, clients and tools",
    "news": "Usenet news software",
    "ocaml": "an OCaml library or tool",
    "otherosfs": "a tool for other operating systems and file systems, or an emulator",
    "perl": "a Perl module or tool",
    "php": "a PHP library or module",
    "python": "a Python module or tool",
    "ruby": "a Ruby library or tool",
    "rust": "a Rust crate or tool",
    "science": "scientific software",
    "shells": "a command shell",
    "sound": "audio and music software",
    "tex": "a TeX or LaTeX package",
    "text": "a text processing tool",
    "utils": "a general-purpose utility",
    "vcs": "a version control system",
    "video": "video software: players, editors and codecs",
    "web": "web software: browsers, web applications and tools",
    "x11": "software for the X Window System",
    "xfce": "part of the Xfce desktop environment",
    "zope": "a Zope application server package",
}


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


def debian_train(packages: Sequence[Package]) -> tuple[list[TrainSet], dict[str, int]]:
    """Four tasks over the package descriptions. A description shared by several packages (exactly, or
    up to the rare words that name the package) and a summary shared by several are kept once, for the
    first package by name: one query with two answers, or one answer for two queries, teaches noise."""
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
    rng = random.Random("debian-train")
    forward, backward, label, same = [], [], [], []
    labelled = sorted(s for s in by_section if s in SECTION_LABELS)
    for section in sorted(by_section):
        group = by_section[section]  # in name order, so neighbours are related packages
        for i, p in enumerate(group):
            near = [group[j] for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(group)]
            forward.append(
                example("debian_summary_description", p.summary, p.description, [n.description for n in near])
            )
            backward.append(example("debian_description_summary", p.description, p.summary, [n.summary for n in near]))
        if section not in SECTION_LABELS:
            continue
        others = [SECTION_LABELS[s] for s in labelled if s != section]
        outside = [q.description for s in labelled if s != section for q in by_section[s][:50]]
        # A partner from the same section, by a hash order so it is not simply the next name.
        order = sorted(group, key=lambda q: stable_hash(f"same-section:{q.name}"))
        for i, p in enumerate(order):
            label.append(
                example(
                    "debian_section_label",
                    p.description,
                    SECTION_LABELS[section],
                    rng.sample(others, min(MAX_NEGATIVES, len(others))),
                )
            )
            if len(order) > 1:
                partner = order[(i + 1) % len(order)]
                same.append(
                    example(
                        "debian_same_section",
                        p.description,
                        partner.description,
                        _unrelated(rng, outside, lambda _t: False),
                    )
                )
    snap = " (snapshot of the apt lists)"
    return [
        TrainSet(
            "debian_summary_description",
            "debian",
            f"Debian package summary -> long description{snap}; negatives: the packages next to it by name in "
            "the same section.",
            forward,
        ),
        TrainSet(
            "debian_description_summary",
            "debian",
            f"Debian long description -> its one-line summary{snap}; negatives: the summaries of the packages "
            "next to it by name in the same section.",
            backward,
        ),
        TrainSet(
            "debian_section_label",
            "debian",
            f"Debian long description -> a description in words of its archive section{snap}; negatives: three "
            "other sections' descriptions. Sections that say nothing about a package (misc, oldlibs, tasks, ...) "
            "are left out.",
            label,
        ),
        TrainSet(
            "debian_same_section",
            "debian",
            f"Debian long description -> another package's description from the same section{snap}; negatives: "
            "descriptions from other sections.",
            same,
        ),
    ], dropped


# ---------------------------------------------------------------- small dictionaries


def devil_train(entries: Sequence[DevilEntry]) -> TrainSet:
    """Bierce's headword -> his definition; negatives: other words' definitions of the same part of speech."""
    by_pos: dict[str, list[str]] = defaultdict(list)
    own: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        by_pos[e.pos].append(e.definition)
        own[e.word].add(normalise(e.definition))
    rng = random.Random("devil-train")
    out = []
    for e in entries:
        mine = own[e.word]  # "laurel" is both a noun and a verb: both entries answer the query
        negs = _unrelated(rng, by_pos[e.pos], lambda t, mine=mine: normalise(t) in mine)
        out.append(example("devil_word_definition", e.word, e.definition, negs))
    desc = (
        "The Devil's Dictionary: headword -> Bierce's definition (quotations left out); negatives: definitions "
        "of other words of the same part of speech."
    )
    return TrainSet("devil_word_definition", "devil", desc, out)


def elements_train(elements: Sequence[Element]) -> TrainSet:
    """Element name -> its entry text; negatives: the neighbours by atomic number (similar chemistry)."""
    out = []
    for i, el in enumerate(elements):
        near = [elements[j].description for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(elements)]
        out.append(example("elements_name_description", el.name.capitalize(), el.description, near))
    desc = "dict-elements: element name -> its description; negatives: the elements next to it by atomic number."
    return TrainSet("elements_name_description", "elements", desc, out)


# ---------------------------------------------------------------- fortunes


def fortune_train(fortunes: Sequence[Fortune]) -> list[TrainSet]:
    """Fortune -> its category's description, and fortune -> another fortune of the same category. A
    fortune filed under two categories has two labels and is left out."""
    fortunes = _unique_by(fortunes, lambda f: normalise(f.text))
    by_cat: dict[str, list[Fortune]] = defaultdict(list)
    for f in fortunes:
        by_cat[f.category].append(f)
    cats = sorted(by_cat)
    rng = random.Random("fortune-train")
    labels, same = [], []
    for cat in cats:
        others = [CATEGORIES[c] for c in cats if c != cat]
        outside = [f.text for c in cats if c != cat for f in by_cat[c][:40]]
        order = sorted(by_cat[cat], key=lambda f: stable_hash(f"fortune:{f.text}"))
        for i, f in enumerate(order):
            labels.append(
                example(
                    "fortune_category_label",
                    f.text,
                    CATEGORIES[cat],
                    rng.sample(others, min(MAX_NEGATIVES, len(others))),
                )
            )
            if len(order) > 1:
                partner = order[(i + 1) % len(order)]
                same.append(
                    example("fortune_same_category", f.text, partner.text, _unrelated(rng, outside, lambda _t: False))
                )
    return [
        TrainSet(
            "fortune_category_label",
            "fortunes",
            "A fortune -> a description in words of its fortune-file category (offensive ones never read); "
            "negatives: three other categories' descriptions.",
            labels,
        ),
        TrainSet(
            "fortune_same_category",
            "fortunes",
            "A fortune -> another fortune of the same category; negatives: fortunes of other categories.",
            same,
        ),
    ]


# ---------------------------------------------------------------- manual pages and docstrings


def manpage_train(pages: Sequence[ManPage]) -> TrainSet:
    """NAME line -> first DESCRIPTION paragraph. Pages copied under several names (catanh.3, catanhf.3)
    share both texts; only the first is kept, and a paragraph shared by different NAME lines is left out."""
    seen: set[str] = set()
    first = []
    for p in pages:
        if normalise(p.name_line) not in seen:
            seen.add(normalise(p.name_line))
            first.append(p)
    pages = _unique_by(first, lambda p: normalise(p.description))
    by_section: dict[str, list[ManPage]] = defaultdict(list)
    for p in pages:
        by_section[p.page.rsplit(".", 1)[1][:1]].append(p)
    out = []
    for section in sorted(by_section):
        group = sorted(by_section[section], key=lambda p: p.page)
        for i, p in enumerate(group):
            near = [group[j].description for j in (i - 1, i + 1, i - 2) if 0 <= j < len(group)]
            out.append(example("manpage_name_description", p.name_line, p.description, near))
    desc = (
        "Manual pages of pinned Debian packages: the NAME line -> the first paragraph of DESCRIPTION; "
        "negatives: the pages next to it by name in the same manual section."
    )
    return TrainSet("manpage_name_description", "manpages", desc, out)


def python_train(functions: Sequence[PyFunction]) -> list[TrainSet]:
    """Docstring summary -> signature, and qualified name -> docstring summary. Signatures and summaries
    shared by several functions ("fit(X, y=None)") would be right for all of them and are left out of the
    task that uses them as answers."""
    by_module: dict[str, list[PyFunction]] = defaultdict(list)
    for f in functions:
        by_module[f.qualname.rsplit(".", 1)[0]].append(f)
    sig_ok = {f.qualname for f in _unique_by(functions, lambda f: f.signature)}
    sum_ok = {f.qualname for f in _unique_by(functions, lambda f: normalise(f.summary))}
    to_sig, to_doc = [], []
    for f in functions:
        siblings = [g for g in by_module[f.qualname.rsplit(".", 1)[0]] if g.qualname != f.qualname]
        if f.qualname in sig_ok and f.qualname in sum_ok:
            to_sig.append(
                example("python_docstring_signature", f.summary, f.signature, [g.signature for g in siblings[:6]])
            )
        if f.qualname in sum_ok:
            to_doc.append(example("python_name_docstring", f.qualname, f.summary, [g.summary for g in siblings[:6]]))
    pinned = "public functions of the standard library, NumPy, SciPy, scikit-learn and PyTorch, read with ast"
    return [
        TrainSet(
            "python_docstring_signature",
            "python",
            f"Python docstrings ({pinned}): the first paragraph -> the signature 'name(a, b=1)'; negatives: "
            "signatures of other functions in the same module or class.",
            to_sig,
        ),
        TrainSet(
            "python_name_docstring",
            "python",
            f"Python docstrings ({pinned}): the qualified name -> the first paragraph of its docstring; "
            "negatives: the docstrings of other functions in the same module or class.",
            to_doc,
        ),
    ]
