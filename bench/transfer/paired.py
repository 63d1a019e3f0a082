"""Paired comparison of two runs' final dev scores, task by task (the gap and its standard error).

    python bench/transfer/paired.py runs/transfer-bench/minilm-l6/transfer-vocab runs/transfer-bench/minilm-l6/scratch

Both runs must have scored the same dev slice (same data, dev_per_task and seed). Prints, for each run, its
mean MRR@10 over tasks, and the mean over tasks of A - B with its standard error over the tasks: a gap
smaller than about two standard errors is not one this dev slice can tell apart.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drops import task_curves  # noqa: E402  (a script beside this one, not a package)


def final_dev(run: Path) -> dict[str, float]:
    """Per-task dev MRR@10 of the run's last dev evaluation."""
    return list(task_curves(run).values())[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    a, b = final_dev(args.a), final_dev(args.b)
    if set(a) != set(b):
        raise SystemExit(f"error: the runs scored different dev tasks: {sorted(set(a) ^ set(b))}")
    gaps = [a[t] - b[t] for t in sorted(a)]
    mean = sum(gaps) / len(gaps)
    se = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1) / len(gaps))
    print(f"A {args.a}: {sum(a.values()) / len(a):.3f}   B {args.b}: {sum(b.values()) / len(b):.3f}")
    print(f"A - B over {len(gaps)} tasks: {mean:+.3f} +- {se:.3f} (SE)")


if __name__ == "__main__":
    main()
