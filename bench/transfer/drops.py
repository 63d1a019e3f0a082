"""How far each run's dev tasks fall below their own earlier best: the per-task view of a curve's dips.

    python bench/transfer/drops.py runs/tb15s1/smollm2-135m/scratch runs/tb15s1/smollm2-135m/transfer-vocab+deep2

A mean curve can dip because every task drifts a little or because a few tasks collapse. For each run this
reads every dev evaluation in its ``metrics.jsonl`` and prints: the largest drop of any task below that task's
best at an earlier evaluation (with the task and the step), and the most tasks that are at once more than
``--threshold`` below their earlier best (with the step). Runs compared this way should share the dev slice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def task_curves(run: Path) -> dict[int, dict[str, float]]:
    """Step -> task -> dev MRR@10, from every dev evaluation in the run's metrics."""
    curves: dict[int, dict[str, float]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        scores = {k.split("/")[1]: v for k, v in record.items() if k.endswith("/mrr@10") and k != "dev/mean_mrr@10"}
        if scores:
            curves[record["step"]] = scores
    return dict(sorted(curves.items()))


def drops(curves: dict[int, dict[str, float]], threshold: float = 0.3) -> dict:
    """The largest fall of a task below its earlier best, and the most tasks below theirs by over ``threshold``.

    >>> d = drops({30: {"a": 0.8, "b": 0.5}, 60: {"a": 0.3, "b": 0.55}, 90: {"a": 0.7, "b": 0.1}})
    >>> d["largest"], d["largest_task"], d["largest_step"], d["most_at_once"], d["most_at_once_step"]
    (0.5, 'a', 60, 1, 60)
    """
    best: dict[str, float] = {}
    largest, largest_task, largest_step, most, most_step = 0.0, None, None, 0, None
    for step, scores in curves.items():
        falls = {t: best[t] - v for t, v in scores.items() if t in best}
        if falls:
            task = max(falls, key=falls.get)
            if falls[task] > largest:
                largest, largest_task, largest_step = falls[task], task, step
            deep = sum(f > threshold for f in falls.values())
            if deep > most:
                most, most_step = deep, step
        for t, v in scores.items():
            best[t] = max(best.get(t, v), v)
    return {
        "largest": round(largest, 3),
        "largest_task": largest_task,
        "largest_step": largest_step,
        "most_at_once": most,
        "most_at_once_step": most_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Run folders (each with a metrics.jsonl).")
    parser.add_argument("--threshold", type=float, default=0.3, help="A task 'collapses' below best - this.")
    args = parser.parse_args()
    print(f"| run | largest fall below a task's earlier best | tasks more than {args.threshold} below at once |")
    print("|---|---|---|")
    for run in args.runs:
        if not (run / "metrics.jsonl").is_file():
            raise SystemExit(f"error: {run} has no metrics.jsonl; give a run folder of the transfer bench")
        d = drops(task_curves(run), args.threshold)
        where = f"{d['largest']:.2f} ({d['largest_task']}, step {d['largest_step']})" if d["largest_task"] else "none"
        at_once = f"{d['most_at_once']} (step {d['most_at_once_step']})" if d["most_at_once"] else "0"
        print(f"| {run} | {where} | {at_once} |")


if __name__ == "__main__":
    main()
