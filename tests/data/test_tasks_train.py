"""Invariants of the training-task builders: clean targets, no positive among its own negatives,
deterministic output, canonical instructions, and the rules that keep ambiguous pairs out."""

from __future__ import annotations

import copy

import pytest

from promptembedder.data.build import LoadedSources
from promptembedder.data.format import TrainExample
from promptembedder.data.instructions import TRAIN_INSTRUCTIONS
from promptembedder.data.sources.bible import VersePair
from promptembedder.data.sources.dictd import DevilEntry
from promptembedder.data.sources.fortunes import Fortune
from promptembedder.data.sources.sword import Note, Topic
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.tasks_eval import lemma_index
from promptembedder.data.tasks_train import (
    MAX_NEGATIVES,
    TrainSet,
    bible_train,
    commentary_train,
    debian_train,
    devil_train,
    elements_train,
    example,
    finish,
    fortune_train,
    gcide_train,
    manpage_train,
    python_train,
    topic_train,
    wordnet_train,
)
from promptembedder.data.text import normalise


def _all_sets(src: LoadedSources) -> list[TrainSet]:
    ot = [v for v in src.verses if v.testament == "ot"]
    return [
        *wordnet_train(src.synsets, set()),
        *gcide_train(src.gcide, set())[0],
        *bible_train(ot),
        *debian_train(src.packages)[0],
        devil_train(src.devil),
        elements_train(src.elements),
        *fortune_train(src.fortunes),
        manpage_train(src.manpages),
        *python_train(src.python),
        commentary_train(src.notes_mhcc, ot),
        topic_train(src.topics, ot),
    ]


@pytest.fixture(scope="module")
def sets(fixture_sources: LoadedSources) -> dict[str, TrainSet]:
    return {ts.name: ts for ts in _all_sets(copy.deepcopy(fixture_sources))}


def test_every_example_is_well_formed(sets: dict[str, TrainSet]) -> None:
    assert set(sets) <= set(TRAIN_INSTRUCTIONS)
    for name, ts in sets.items():
        for ex in ts.examples:
            assert ex.task == name
            assert ex.instruction == TRAIN_INSTRUCTIONS[name][0]
            assert ex.query.strip() and ex.positive.strip()
            assert len(ex.negatives) <= MAX_NEGATIVES
            assert len(set(ex.negatives)) == len(ex.negatives)
            assert normalise(ex.positive) not in {normalise(n) for n in ex.negatives}, (name, ex.query)


def test_builders_are_deterministic(fixture_sources: LoadedSources, sets: dict[str, TrainSet]) -> None:
    again = {ts.name: ts for ts in _all_sets(copy.deepcopy(fixture_sources))}
    assert {k: [e.to_json() for e in v.examples] for k, v in again.items()} == {
        k: [e.to_json() for e in v.examples] for k, v in sets.items()
    }


def test_bare_headword_negatives_are_never_its_other_senses(
    fixture_sources: LoadedSources, sets: dict[str, TrainSet]
) -> None:
    idx = lemma_index(fixture_sources.synsets)
    words = sets["wordnet_word_gloss"].examples
    assert words
    polysemous = 0
    for ex in words:
        senses = {normalise(s.definition) for s in idx[ex.query.casefold()]}
        polysemous += len(senses) > 1
        assert not senses & {normalise(n) for n in ex.negatives}, ex.query
    assert polysemous  # the fixture does hold words with several senses, so the rule was exercised
    senses_by_head: dict[str, set[str]] = {}
    for e in fixture_sources.gcide:
        senses_by_head.setdefault(e.headword.casefold(), set()).update(normalise(d) for d in e.definitions)
    for ex in sets["gcide_word_definition"].examples:
        assert not senses_by_head[ex.query.casefold()] & {normalise(n) for n in ex.negatives}, ex.query


def test_synonym_negatives_share_no_synset_with_the_query(
    fixture_sources: LoadedSources, sets: dict[str, TrainSet]
) -> None:
    idx = lemma_index(fixture_sources.synsets)
    for ex in sets["wordnet_word_synonym"].examples:
        right = {lemma.casefold() for s in idx[ex.query.casefold()] for lemma in s.lemmas}
        assert ex.positive.casefold() in right
        assert not right & {n.casefold() for n in ex.negatives}, ex.query


def _synset(sid: str, lemmas: tuple[str, ...], definition: str, hypernyms: tuple[str, ...] = ()) -> Synset:
    return Synset(sid, "n", "noun.animal", lemmas, definition, (), hypernyms)


def test_hypernym_negatives_are_siblings_never_a_hypernym() -> None:
    synsets = [
        _synset("n1", ("canine", "canid"), "a flesh-eating mammal of the dog family"),
        _synset("n2", ("domestic animal",), "any of various animals tamed for a human environment"),
        _synset("n3", ("dog", "domestic dog"), "a member of the genus Canis", ("n1", "n2")),
        _synset("n4", ("wolf",), "any of various predatory carnivorous canine mammals", ("n1",)),
        _synset("n5", ("fox",), "alert carnivorous mammal with pointed muzzle", ("n1",)),
        _synset("n6", ("held out",), "a synset of the held-out split", ("n1",)),
    ]
    (hyper,) = [ts for ts in wordnet_train(synsets, {"n6"}) if ts.name == "wordnet_gloss_hypernym"]
    dog = next(e for e in hyper.examples if e.query == "a member of the genus Canis")
    assert dog.positive == "a flesh-eating mammal of the dog family"
    # Siblings only: neither hypernym (n1, n2) and not the held-out n6.
    assert set(dog.negatives) == {synsets[3].definition, synsets[4].definition}


def test_reverse_dictionary_leaves_out_shared_glosses_and_overlapping_negatives() -> None:
    synsets = [
        _synset("n1", ("aster",), "a variety of aster"),
        _synset("n2", ("michaelmas daisy",), "a variety of aster"),
        _synset("n3", ("dog", "domestic dog"), "a member of the genus Canis"),
        _synset("n4", ("dog", "frump"), "a dull unattractive unpleasant girl or woman"),
        _synset("n5", ("wolf",), "a predatory canine"),
    ]
    (rev,) = [ts for ts in wordnet_train(synsets, set()) if ts.name == "wordnet_gloss_word"]
    assert "a variety of aster" not in {e.query for e in rev.examples}
    dog = next(e for e in rev.examples if e.query == "a member of the genus Canis")
    assert dog.positive == "dog, domestic dog"
    assert "dog, frump" not in dog.negatives  # "dog" answers this gloss too


def test_devil_word_with_two_entries_never_gets_the_other_as_negative() -> None:
    entries = [
        DevilEntry("laurel", "n.", "The laurus, a vegetable dedicated to Apollo."),
        DevilEntry("laurel", "v.", "To crown with laurel."),
        *(DevilEntry(f"w{i}", "n.", f"Definition number {i} of something else.") for i in range(6)),
    ]
    ts = devil_train(entries)
    for ex in ts.examples:
        if ex.query == "laurel":
            assert not {"To crown with laurel.", "The laurus, a vegetable dedicated to Apollo."} & set(ex.negatives)


def test_fortune_filed_under_two_categories_is_left_out() -> None:
    items = [Fortune("art", "Shared saying."), Fortune("food", "Shared saying.")]
    items += [Fortune(c, f"{c} fortune {i}.") for c in ("art", "food", "law", "love") for i in range(3)]
    labels, same = fortune_train(items)
    assert "Shared saying." not in {e.query for e in labels.examples} | {e.positive for e in same.examples}
    texts = {f.text: f.category for f in items}
    for ex in same.examples:
        assert texts[ex.positive] == texts[ex.query] and ex.positive != ex.query
        assert all(texts[n] != texts[ex.query] for n in ex.negatives)
    assert len(labels.examples) == 12


def test_shared_docstrings_and_signatures_are_left_out(sets: dict[str, TrainSet]) -> None:
    # bisect's insort_left/insort_right (and bisect_left/right) share one summary: no example can use it.
    queries = {e.query for e in sets["python_name_docstring"].examples}
    assert "fnmatch.translate" in queries and not any(q.startswith("bisect.") for q in queries)
    sig = {e.positive for e in sets["python_docstring_signature"].examples}
    assert sig == {"fnmatch(name, pat)", "filter(names, pat)", "fnmatchcase(name, pat)", "translate(pat)"}


def test_bible_tasks_never_use_the_new_testament(sets: dict[str, TrainSet]) -> None:
    verses = [
        VersePair(f"Gen.1.{v}", "ot", "Gen", 1, v, f"KJV Genesis one {v}.", f"WEB Genesis one {v}.") for v in (1, 2, 3)
    ]
    notes = [
        Note("ot", "Gen", 1, 1, 2, "On the first two verses."),
        Note("nt", "Matt", 1, 1, 1, "On Matthew."),
        Note("ot", "Gen", 1, 3, 3, "On light."),
    ]
    comm = commentary_train(notes, verses)
    assert [(e.query, e.positive) for e in comm.examples] == [
        ("On the first two verses.", "KJV Genesis one 1. KJV Genesis one 2."),
        ("On light.", "KJV Genesis one 3."),
    ]
    topics = [Topic("Light", "Creation of", ("Gen.1.3", "John.1.4")), Topic("Gospel", "Preached", ("Matt.4.23",))]
    top = topic_train(topics, verses)
    assert [(e.query, e.positive) for e in top.examples] == [("Light: Creation of", "KJV Genesis one 3.")]
    nxt = sets["bible_ot_next_verse"].examples
    assert nxt and all("Matt" not in e.query for e in nxt)


def test_debian_section_tasks_use_described_sections(sets: dict[str, TrainSet]) -> None:
    from promptembedder.data.tasks_train import SECTION_LABELS

    labels = set(SECTION_LABELS.values())
    for ex in sets["debian_section_label"].examples:
        assert ex.positive in labels and set(ex.negatives) <= labels


def test_manpages_and_elements(sets: dict[str, TrainSet]) -> None:
    assert {e.query for e in sets["manpage_name_description"].examples} == {
        "ls - list directory contents",
        "pipe, pipe2 - create pipe",
        "signal - overview of signals",
    }
    assert [e.query for e in sets["elements_name_description"].examples] == ["Hydrogen", "Zinc", "Fermium"]


def test_finish_deduplicates_and_caps_deterministically() -> None:
    exs = [example("devil_word_definition", f"w{i % 50}", f"def {i % 50}") for i in range(100)]
    ts = finish(TrainSet("devil_word_definition", "devil", "", list(exs)), cap=10)
    again = finish(TrainSet("devil_word_definition", "devil", "", list(reversed(exs))), cap=10)
    assert len(ts.examples) == 10
    assert {e.query for e in ts.examples} == {e.query for e in again.examples}
    assert len({(e.query, e.positive) for e in ts.examples}) == 10


def test_example_drops_the_positive_and_repeats_from_negatives() -> None:
    ex = example(
        "gcide_word_definition", "dog", "A canine.", ["a  canine.", "A cat.", "A cat.", "A cow.", "A pig.", "A hen."]
    )
    assert isinstance(ex, TrainExample)
    assert ex.negatives == ["A cat.", "A cow.", "A pig."]
