from collections import Counter

import pytest

from promptembedder.data.format import TrainExample
from promptembedder.training.sampler import TaskBatchSampler


def tasks(sizes):
    return {
        name: [TrainExample(name, f"instruction {name}", f"q{i}", f"p{i}") for i in range(n)]
        for name, n in sizes.items()
    }


def test_batches_hold_one_task_and_tasks_mix_in_proportion_to_size():
    sampler = TaskBatchSampler(tasks({"big": 900, "small": 100}), batch_size=4, seed=1)
    counts = Counter()
    for _ in range(2000):
        batch = sampler.next_batch()
        assert {e.task for e in batch.examples} == {batch.task} and len(batch.examples) == 4
        assert batch.instruction == f"instruction {batch.task}"
        counts[batch.task] += 1
    assert 0.87 < counts["big"] / 2000 < 0.93


def test_alpha_zero_mixes_uniformly():
    sampler = TaskBatchSampler(tasks({"big": 900, "small": 100}), batch_size=4, seed=1, alpha=0.0)
    share = sum(sampler.next_batch().task == "big" for _ in range(2000)) / 2000
    assert 0.45 < share < 0.55


def test_every_example_is_seen_once_per_epoch():
    sampler = TaskBatchSampler(tasks({"only": 12}), batch_size=4, seed=0)
    seen = [e.query for _ in range(3) for e in sampler.next_batch().examples]
    assert sorted(seen) == sorted(f"q{i}" for i in range(12))


def test_state_dict_resumes_the_same_sequence():
    data = tasks({"a": 50, "b": 30})
    straight = TaskBatchSampler(data, 4, seed=3)
    expected = [[e.query for e in straight.next_batch().examples] for _ in range(40)]
    first = TaskBatchSampler(data, 4, seed=3)
    for _ in range(17):
        first.next_batch()
    resumed = TaskBatchSampler(data, 4, seed=3)
    resumed.load_state_dict(first.state_dict())
    assert [[e.query for e in resumed.next_batch().examples] for _ in range(23)] == expected[17:]


def test_tasks_smaller_than_a_batch_are_skipped_or_refused():
    sampler = TaskBatchSampler(tasks({"a": 50, "tiny": 2}), 4)
    assert sampler.skipped == {"tiny": 2}
    with pytest.raises(ValueError, match="no task has at least batch_size=4"):
        TaskBatchSampler(tasks({"tiny": 2}), 4)


def test_each_batch_draws_one_of_its_tasks_instructions_and_a_resume_draws_the_same():
    data = tasks({"a": 50, "b": 30})
    wordings = {"a": [f"a wording {i}" for i in range(8)]}  # b has no list: its examples' own instruction
    straight = TaskBatchSampler(data, 4, seed=3, instructions=wordings)
    drawn = [(b.task, b.instruction, [e.query for e in b.examples]) for b in (straight.next_batch() for _ in range(60))]
    assert {i for t, i, _ in drawn if t == "a"} == set(wordings["a"])  # every wording gets used
    assert {i for t, i, _ in drawn if t == "b"} == {"instruction b"}
    # The same seed without instruction lists draws the same tasks and examples: only the wording changes.
    plain = TaskBatchSampler(data, 4, seed=3)
    assert [(b.task, [e.query for e in b.examples]) for b in (plain.next_batch() for _ in range(60))] == [
        (t, q) for t, _, q in drawn
    ]
    first = TaskBatchSampler(data, 4, seed=3, instructions=wordings)
    for _ in range(25):
        first.next_batch()
    resumed = TaskBatchSampler(data, 4, seed=3, instructions=wordings)
    resumed.load_state_dict(first.state_dict())
    assert [(b.task, b.instruction) for b in (resumed.next_batch() for _ in range(35))] == [
        (t, i) for t, i, _ in drawn[25:]
    ]


def test_a_resume_refuses_other_instruction_wordings_than_the_checkpoints():
    data = tasks({"a": 50, "b": 30})
    first = TaskBatchSampler(data, 4, seed=3, instructions={"a": ["x", "y"]})
    first.next_batch()
    other = TaskBatchSampler(data, 4, seed=3, instructions={"a": ["x", "z"]})
    with pytest.raises(ValueError, match="instruction wordings"):
        other.load_state_dict(first.state_dict())
    old_checkpoint = {k: v for k, v in TaskBatchSampler(data, 4, seed=3).state_dict().items() if k != "instructions"}
    TaskBatchSampler(data, 4, seed=3).load_state_dict(old_checkpoint)  # made before wordings: canonical resumes
    with pytest.raises(ValueError, match="instruction wordings"):
        first.load_state_dict(old_checkpoint)
