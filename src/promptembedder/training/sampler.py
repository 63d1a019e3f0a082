"""Batches of one task each, tasks mixed across steps in proportion to their size (settable), resumable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptembedder.data.format import TrainExample
from promptembedder.data.text import stable_hash


@dataclass
class TaskBatch:
    task: str
    instruction: str
    examples: list[TrainExample]


class TaskBatchSampler:
    """Draws, for step s, a task with probability ~ size ** alpha, then that task's next ``batch_size`` examples
    and one of the task's instructions.

    Everything is a function of (seed, step, per-task cursors): the state is a few integers, so a resumed
    run draws exactly the batches an uninterrupted one would. Each task walks through its own shuffled
    order and reshuffles (a new permutation from (seed, task, epoch)) when it runs out.
    """

    def __init__(
        self,
        tasks: dict[str, Sequence[TrainExample]],
        batch_size: int,
        seed: int = 0,
        alpha: float = 1.0,
        instructions: dict[str, Sequence[str]] | None = None,
    ):
        """``instructions``: task -> its wordings; each batch of that task draws one (seeded by the step, so a
        resumed run draws the same). A task without a list uses its examples' own instruction."""
        small = {name: len(ex) for name, ex in tasks.items() if len(ex) < batch_size}
        self.tasks = {name: list(ex) for name, ex in sorted(tasks.items()) if name not in small}
        if not self.tasks:
            raise ValueError(f"no task has at least batch_size={batch_size} examples (sizes: {small})")
        self.skipped = small
        self.names = list(self.tasks)
        self.batch_size = batch_size
        self.seed = seed
        sizes = np.array([len(self.tasks[n]) for n in self.names], dtype=np.float64)
        weights = sizes**alpha
        self.probabilities = weights / weights.sum()
        self.instructions = {n: list(v) for n, v in (instructions or {}).items() if n in self.tasks and v}
        self.step = 0
        self.cursors = {n: 0 for n in self.names}
        self.epochs = {n: 0 for n in self.names}

    def _order(self, name: str) -> np.ndarray:
        task_index = self.names.index(name)
        rng = np.random.default_rng([self.seed, task_index, self.epochs[name]])
        return rng.permutation(len(self.tasks[name]))

    def next_batch(self) -> TaskBatch:
        rng = np.random.default_rng([self.seed, 1_000_003, self.step])
        name = self.names[int(rng.choice(len(self.names), p=self.probabilities))]
        examples = self.tasks[name]
        if self.cursors[name] + self.batch_size > len(examples):
            self.epochs[name] += 1
            self.cursors[name] = 0
        order = self._order(name)
        picked = [examples[i] for i in order[self.cursors[name] : self.cursors[name] + self.batch_size]]
        self.cursors[name] += self.batch_size
        self.step += 1
        wordings = self.instructions.get(name)
        instruction = wordings[int(rng.integers(len(wordings)))] if wordings else picked[0].instruction
        return TaskBatch(name, instruction, picked)

    def _wordings_digest(self) -> str:
        return stable_hash(json.dumps(self.instructions, sort_keys=True))[:16]

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "cursors": dict(self.cursors),
            "epochs": dict(self.epochs),
            "seed": self.seed,
            "instructions": self._wordings_digest(),
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["cursors"]) != set(self.names):
            raise ValueError(
                f"checkpoint's tasks {sorted(state['cursors'])} differ from this run's {sorted(self.names)}"
            )
        # A checkpoint from before instruction lists drew each task's canonical wording (an empty list's digest).
        saved = state.get("instructions", stable_hash(json.dumps({}, sort_keys=True))[:16])
        if saved != self._wordings_digest():
            raise ValueError(
                "the instruction wordings (instructions.json) differ from the checkpoint's, so the resumed run would "
                "not draw the batches the interrupted one would have; resume on the same data, or set "
                "data.instructions=canonical if the checkpoint was made without instruction lists"
            )
        self.step, self.cursors, self.epochs = state["step"], dict(state["cursors"]), dict(state["epochs"])
