"""The build on fixture sources: splits are disjoint, leaks fail loudly, output is byte-identical."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from promptembedder.data.build import LoadedSources, build, build_sets, write_build
from promptembedder.data.format import TrainExample, list_eval_tasks, list_train_files, load_eval_task, load_train_file
from promptembedder.data.instructions import EVAL_INSTRUCTIONS, TRAIN_INSTRUCTIONS
from promptembedder.data.sample import make_sample
from promptembedder.data.split import LeakageError, LeakGuard, heldout_synsets, stratified_split
from promptembedder.data.text import normalise

HELDOUT = 6


def _hashes(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _train_texts(d: Path) -> set[str]:
    out: set[str] = set()
    for p in list_train_files(d):
        for ex in load_train_file(p):
            out.update(normalise(t) for t in (ex.query, ex.positive, *ex.negatives))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fixture_sources: LoadedSources) -> Path:
    out = tmp_path_factory.mktemp("build")
    build(out, copy.deepcopy(fixture_sources), heldout_n=HELDOUT)
    return out


def test_layout_and_every_file_validates(built: Path) -> None:
    names = {p.stem for p in list_train_files(built)}
    # Every task the fixtures can feed: the fixture WordNet holds no hypernym of its synsets, and no verse
    # of the fixture Bible is listed in the Nave's excerpt, so those two tasks are the only ones absent.
    assert names == set(TRAIN_INSTRUCTIONS) - {"wordnet_gloss_hypernym", "bible_topic_verse"}
    evals = {p.stem: load_eval_task(p) for p in list_eval_tasks(built)}
    assert {t.task_type for t in evals.values()} == {
        "retrieval",
        "reranking",
        "sts",
        "classification",
        "clustering",
        "pair_classification",
    }
    manifest = json.loads((built / "manifest.json").read_text())
    for f in manifest["files"]:
        assert f["count"] > 0 and len(f["sha256"]) == 64 and f["license"] and f["source"]
    assert manifest["stats"]["leakage_check"]["violations"] == 0


def test_instructions_travel_with_the_data(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    wordings = json.loads((built / "train" / "instructions.json").read_text())
    assert manifest["instructions"]["path"] == "train/instructions.json"
    assert wordings == {name: TRAIN_INSTRUCTIONS[name] for name in wordings}
    assert set(wordings) == {p.stem for p in list_train_files(built)}
    for f in manifest["files"]:
        if f["split"] == "train":
            assert f["instructions"] == TRAIN_INSTRUCTIONS[f["name"]]
            assert f["instruction"] == TRAIN_INSTRUCTIONS[f["name"]][0]
        else:
            task = load_eval_task(built / f["path"])
            assert task.instruction == f["instruction"] == EVAL_INSTRUCTIONS[f["name"]]["trained"]
            assert task.withheld_instruction == f["withheld_instruction"] == EVAL_INSTRUCTIONS[f["name"]]["withheld"]
    for key in ("devil", "elements", "fortunes", "manpages", "python", "mhcc", "naves"):
        assert manifest["sources"][key]["license"]


def test_build_is_deterministic(tmp_path: Path, fixture_sources: LoadedSources, built: Path) -> None:
    build(tmp_path, copy.deepcopy(fixture_sources), heldout_n=HELDOUT)
    assert _hashes(tmp_path) == _hashes(built)


def test_wordnet_split_is_disjoint(built: Path, fixture_sources: LoadedSources) -> None:
    held = heldout_synsets(fixture_sources.synsets, HELDOUT)
    assert len(held) == HELDOUT
    train = _train_texts(built)
    for s in fixture_sources.synsets:
        if s.id in held:
            assert normalise(s.definition) not in train
            assert not {normalise(e) for e in s.examples} & train
    retrieval = load_eval_task(built / "eval" / "wordnet_example_gloss.jsonl")
    assert len(retrieval.corpus) == len(fixture_sources.synsets)  # every gloss is a candidate
    assert {d for rel in retrieval.qrels.values() for d in rel} <= held | {
        s.id
        for s in fixture_sources.synsets
        if normalise(s.definition) in {normalise(x.definition) for x in fixture_sources.synsets if x.id in held}
    }


def test_bible_split_by_testament(built: Path, fixture_sources: LoadedSources) -> None:
    train = _train_texts(built)
    nt = [v for v in fixture_sources.verses if v.testament == "nt"]
    assert nt and not {normalise(t) for v in nt for t in (v.kjv, v.web)} & train
    pairs = load_eval_task(built / "eval" / "bible_nt_paraphrase.jsonl").pairs
    labels = [p.label for p in pairs]
    assert abs(labels.count(1) - labels.count(0)) <= 1
    web_of = {v.kjv: v.web for v in nt}
    for p in pairs:
        assert (p.text2 == web_of[p.text1]) == (p.label == 1)


def test_eval_only_sources_stay_out_of_training(built: Path, fixture_sources: LoadedSources) -> None:
    train = _train_texts(built)
    held = [a.title for a in fixture_sources.articles] + [q.text for q in fixture_sources.questions]
    held += [m.text for m in fixture_sources.sms]
    assert not {normalise(t) for t in held} & train


def test_leak_fails_the_build(tmp_path: Path, fixture_sources: LoadedSources) -> None:
    src = copy.deepcopy(fixture_sources)
    evals, trains, guard, stats = build_sets(src, HELDOUT)
    gloss = next(ev for ev in evals if ev.name == "wordnet_example_gloss").heldout[0]
    trains[0].examples.append(TrainExample("t", "i", "a word", f"  {gloss.upper()} "))  # differs in case/spaces
    with pytest.raises(LeakageError, match="held-out text found in training data"):
        write_build(tmp_path, src, evals, trains, guard, stats)
    assert not (tmp_path / "manifest.json").exists()  # a failed build leaves no manifest claiming success


def test_new_testament_text_in_a_new_task_fails_the_build(tmp_path: Path, fixture_sources: LoadedSources) -> None:
    src = copy.deepcopy(fixture_sources)
    evals, trains, guard, stats = build_sets(src, HELDOUT)
    nt = next(v for v in src.verses if v.testament == "nt")
    comm = next(ts for ts in trains if ts.name == "bible_commentary_verse")
    comm.examples.append(TrainExample(comm.name, "i", "a note on the Beatitudes", nt.kjv))
    with pytest.raises(LeakageError, match="bible_commentary_verse.jsonl: positive"):
        write_build(tmp_path, src, evals, trains, guard, stats)


def test_leak_guard_rules() -> None:
    guard = LeakGuard()
    long = "he that regardeth the day regardeth it unto the lord"
    guard.add(["able to swim", long], "test")
    assert guard.find("able to swim") and guard.find("ABLE  to swim")
    assert guard.find("she was able to swim") is None  # short held-out texts only match whole
    assert guard.find(f"And {long.title()} and more") is not None  # long ones also inside
    assert guard.find("he that regardeth the day regardeth it") is None
    dropped: dict[str, int] = {}
    kept = guard.filter(
        [
            TrainExample("t", "i", "q", "p", ["able to swim", "fine", "P"]),
            TrainExample("t", "i", "Able to swim", "p", []),
        ],
        dropped,
    )
    assert [k.negatives for k in kept] == [["fine"]] and dropped == {"negatives": 2, "examples": 1}


def test_stratified_split_keeps_every_label_on_both_sides() -> None:
    items = [("a", str(i)) for i in range(8)] + [("b", "x"), ("b", "y")] + [("c", "z")]
    tags = stratified_split(items, lambda t: t[0], lambda t: t[1], "s", 0.25)
    for lab in "ab":
        sides = {tag for it, tag in zip(items, tags, strict=True) if it[0] == lab}
        assert sides == {"train", "test"}
    assert tags[-1] == "train"
    assert tags == stratified_split(items, lambda t: t[0], lambda t: t[1], "s", 0.25)


def test_sample_of_a_build(built: Path, tmp_path: Path) -> None:
    manifest = make_sample(built, tmp_path / "a", lines=20, max_bytes=4000)
    make_sample(built, tmp_path / "b", lines=20, max_bytes=4000)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    for f in manifest["files"]:
        p = tmp_path / "a" / f["path"]
        assert f["count"] > 0 and p.stat().st_size <= 4000 + 1000  # the header is not budgeted
        if f["split"] == "eval":
            task = load_eval_task(p)  # qrels pointing at dropped docs would fail here
            assert len(task) == f["count"]
        else:
            assert len(load_train_file(p)) <= 20
