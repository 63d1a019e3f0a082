"""The instruction data: enough varied, distinct wordings per training task, and eval instructions of
both kinds, the withheld ones genuinely unseen."""

from __future__ import annotations

import json
import re

import pytest

from promptembedder.data import sample_dir
from promptembedder.data.instructions import EVAL_INSTRUCTIONS, TRAIN_INSTRUCTIONS, normalise_instruction
from promptembedder.data.tasks_eval import INSTR_EXAMPLE_GLOSS, INSTR_VERSE_PARAPHRASE

WINDOW = 6
ALL_TRAIN = [(task, s) for task, wordings in TRAIN_INSTRUCTIONS.items() for s in wordings]


def _words(s: str) -> list[str]:
    # Punctuation is not a difference in wording: "a word, retrieve" and "a word retrieve" are the same run.
    return re.findall(r"\w+", normalise_instruction(s))


def _runs(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _packaged_eval_tasks() -> dict[str, dict]:
    """Eval task name -> its meta header, as shipped in the package's sample."""
    heads = {}
    for p in sorted((sample_dir() / "eval").glob("*.jsonl")):
        with p.open(encoding="utf-8") as f:
            heads[p.stem] = json.loads(f.readline())
    return heads


# ---------------------------------------------------------------- normalise_instruction


def test_normalise_casefolds_collapses_whitespace_and_strips_trailing_punctuation() -> None:
    assert normalise_instruction("  Find the\tDEFINITION\n of this  word. ") == "find the definition of this word"
    assert normalise_instruction("What does this word mean?!") == "what does this word mean"
    assert normalise_instruction("Straße…") == "strasse"  # Unicode case folding and punctuation
    # Only trailing punctuation goes: inside, it is part of the wording.
    assert (
        normalise_instruction("Reverse lookup: a definition's headword.") == "reverse lookup: a definition's headword"
    )


def test_normalise_is_idempotent_and_keeps_an_empty_string_empty() -> None:
    for _, s in ALL_TRAIN:
        once = normalise_instruction(s)
        assert normalise_instruction(once) == once
    assert normalise_instruction(" ?. ") == ""


# ---------------------------------------------------------------- training instructions


def test_there_are_at_least_twenty_training_tasks() -> None:
    assert len(TRAIN_INSTRUCTIONS) >= 20


@pytest.mark.parametrize("task", sorted(TRAIN_INSTRUCTIONS))
def test_each_training_task_has_eight_distinct_wordings_of_varied_length(task: str) -> None:
    wordings = TRAIN_INSTRUCTIONS[task]
    assert len(wordings) >= 8, f"{task}: {len(wordings)} instructions"
    assert len({normalise_instruction(s) for s in wordings}) == len(wordings)
    lengths = {len(_words(s)) for s in wordings}
    assert len(lengths) >= 3, f"{task}: lengths {sorted(lengths)}"
    assert max(lengths) >= 2 * min(lengths), f"{task}: lengths {sorted(lengths)} span less than a factor 2"


def test_no_two_training_instructions_are_the_same_after_normalisation() -> None:
    seen: dict[str, str] = {}
    for task, s in ALL_TRAIN:
        key = normalise_instruction(s)
        assert key not in seen, f"{task} repeats an instruction of {seen[key]}: {s!r}"
        seen[key] = task


def test_instructions_are_stored_tidy() -> None:
    # They go into the prompt verbatim: stray spaces would be tokens the model learns to expect.
    texts = [s for _, s in ALL_TRAIN] + [s for pair in EVAL_INSTRUCTIONS.values() for s in pair.values()]
    for s in texts:
        assert s and s == " ".join(s.split()), repr(s)


def test_packaged_training_examples_carry_one_of_their_tasks_instructions() -> None:
    for p in sorted((sample_dir() / "train").glob("*.jsonl")):
        assert p.stem in TRAIN_INSTRUCTIONS, f"training task {p.stem} has no instructions"
        with p.open(encoding="utf-8") as f:
            used = {json.loads(line)["instruction"] for line in f}
        assert used <= set(TRAIN_INSTRUCTIONS[p.stem]), f"{p.stem}: {sorted(used - set(TRAIN_INSTRUCTIONS[p.stem]))}"


# ---------------------------------------------------------------- eval instructions


def test_eval_instructions_cover_exactly_the_packaged_eval_tasks() -> None:
    names = set(_packaged_eval_tasks())
    assert len(names) == 11
    assert set(EVAL_INSTRUCTIONS) == names


@pytest.mark.parametrize("task", sorted(EVAL_INSTRUCTIONS))
def test_each_eval_task_has_a_trained_and_a_different_withheld_instruction(task: str) -> None:
    pair = EVAL_INSTRUCTIONS[task]
    assert set(pair) == {"trained", "withheld"}
    assert normalise_instruction(pair["trained"]) != normalise_instruction(pair["withheld"])


@pytest.mark.parametrize("task", sorted(EVAL_INSTRUCTIONS))
def test_withheld_instruction_is_no_training_wording(task: str) -> None:
    withheld = EVAL_INSTRUCTIONS[task]["withheld"]
    words = _words(withheld)
    n = min(WINDOW, len(words))  # a withheld instruction shorter than a window must not occur whole
    runs = _runs(words, n)
    for train_task, s in ALL_TRAIN:
        assert normalise_instruction(withheld) != normalise_instruction(s), f"equal to {train_task}'s {s!r}"
        shared = runs & _runs(_words(s), n)
        assert not shared, f"shares {' '.join(sorted(shared)[0])!r} with {train_task}'s {s!r}"


@pytest.mark.parametrize(
    ("eval_task", "train_task", "today"),
    [
        ("wordnet_example_gloss", "wordnet_example_gloss", INSTR_EXAMPLE_GLOSS),
        ("bible_nt_paraphrase", "bible_ot_paraphrase", INSTR_VERSE_PARAPHRASE),
    ],
)
def test_shared_trained_instruction_is_todays_and_a_training_canonical(
    eval_task: str, train_task: str, today: str
) -> None:
    assert EVAL_INSTRUCTIONS[eval_task]["trained"] == today
    assert TRAIN_INSTRUCTIONS[train_task][0] == today


def test_trained_instruction_is_the_one_the_packaged_eval_sets_carry() -> None:
    # The trained-style column reproduces the instruction every earlier run was evaluated with.
    for task, head in _packaged_eval_tasks().items():
        assert EVAL_INSTRUCTIONS[task]["trained"] == head["instruction"], task
