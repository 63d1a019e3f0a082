"""An exponential moving average (Polyak average) of the trainable weights, for evaluation and the saved model.

With single-task batches each step pushes the shared weights towards one task, and the dev score swings from
one evaluation to the next. The average over the last ~1/(1 - decay) steps smooths swings shorter than that; the
optimiser keeps training the raw weights. Measured on the transfer bench (bench/RESULTS.md, "The deep arm's
dips"): a 60-step dip outlasts an average at 0.95, but the average ends +0.005 above the raw weights.

Only the trainable weights are averaged: ``torch.optim.swa_utils.AveragedModel`` would copy (and update every
step) the frozen Embedding LLM too.

    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> ema = WeightAverage({"w": w}, decay=0.5)
    >>> with torch.no_grad():
    ...     _ = w.fill_(1.0)
    >>> ema.update({"w": w}, step=100)  # decay min(0.5, 101/110): half of the way to the new weight
    >>> ema.averages["w"].tolist()
    [0.5, 0.5]
    >>> with ema.applied({"w": w}):
    ...     w.tolist()
    [0.5, 0.5]
    >>> w.tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class WeightAverage:
    """``avg <- d avg + (1 - d) w`` after every optimiser step, with ``d = min(decay, (1 + step) / (10 + step))``.

    The warm-up of ``d`` keeps the first steps from leaning on the initial weights (at step 30 the average already
    weighs them by 0.775 ** 30 ~ 0.0005 rather than 0.95 ** 30 ~ 0.2); it depends only on the step number, so a
    resumed run averages exactly as an uninterrupted one.
    """

    def __init__(self, params: dict[str, torch.Tensor], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.averages = {name: p.detach().clone().float() for name, p in params.items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor], step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for name, p in params.items():
            self.averages[name].lerp_(p.detach().float(), weight)

    @contextmanager
    def applied(self, params: dict[str, torch.Tensor]) -> Iterator[None]:
        """The averages in place of the weights inside the block; the weights back after it."""
        kept = {name: p.detach().clone() for name, p in params.items()}
        self.copy_to(params)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(kept[name])

    @torch.no_grad()
    def copy_to(self, params: dict[str, torch.Tensor]) -> None:
        for name, p in params.items():
            p.copy_(self.averages[name].to(p.device, p.dtype))

    def state_dict(self, prefix: str = "ema.") -> dict[str, torch.Tensor]:
        return {prefix + name: t for name, t in self.averages.items()}

    def load_state_dict(self, saved: dict[str, torch.Tensor], prefix: str = "ema.") -> None:
        missing = [name for name in self.averages if prefix + name not in saved]
        if missing:
            raise KeyError(f"no averaged weights for {missing[:3]} in the checkpoint")
        for name, t in self.averages.items():
            t.copy_(saved[prefix + name].to(t.device, t.dtype))
