"""The transfer bench's table and plot from arms trained in separate runs (``run.py --arm``, other ``--runs``
folders, other seeds), each given by its run folder (the one holding ``arm.json``)::

    python bench/transfer/table.py --out bench/results/transfer/round8/smollm2-seed1 --eval-every 15 \\
        --command "run.py ... (each arm's command)" \\
        scratch=runs/tb15s1/smollm2-135m/scratch transfer-vocab+deep2=runs/tb15s1/smollm2-135m/transfer-vocab+deep2

One arm must be called ``scratch``: the others' steps to 95% are counted against its final score. An arm given
as ``LABEL=RUN,RUN...`` (one run folder per seed) is the mean of those runs' curves, point by point over the
steps that every one of them evaluated, so its steps to 95% are those of the seed-averaged curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import score_steps, write_report  # noqa: E402  (a script beside this one, not a package)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def mean_arm(label: str, records: list[dict]) -> dict:
    """One arm from several runs of it (seeds): the mean curve over the steps every run evaluated."""
    if len(records) == 1:
        return records[0]
    shared = set.intersection(*(set(r["curve"]) for r in records))
    if not shared:
        _fail(f"{label}: its runs share no evaluated step; evaluate them on one grid")
    curve = {s: sum(r["curve"][s] for r in records) / len(records) for s in sorted(shared, key=int)}
    mean = {
        key: sum(r[key] for r in records) / len(records)
        for key in ("seconds_per_step", "final_loss")
        if all(r.get(key) is not None for r in records)
    }
    return {**records[0], **mean, "label": label, "curve": curve, "runs": [r["output_dir"] for r in records]}


def load_arms(specs: list[str]) -> dict[str, dict]:
    arms = {}
    for spec in specs:
        label, _, folders = spec.partition("=")
        if not label or not folders:
            _fail(f"{spec!r}: give LABEL=RUN_FOLDER[,RUN_FOLDER...] (the folders with the arm's arm.json)")
        records = []
        for folder in folders.split(","):
            path = Path(folder) / "arm.json"
            if not path.is_file():
                _fail(f"{spec!r}: no {path}; train the arm with run.py --arm first")
            records.append({"output_dir": folder, **json.loads(path.read_text())})
        arms[label] = mean_arm(label, records)
    if "scratch" not in arms:
        _fail("one arm must be labelled scratch (the others are measured against it)")
    return arms


def target_of(arms: dict[str, dict]) -> str:
    """The Embedding LLM every arm's runs trained for, from the config.json beside each arm.json."""
    names = set()
    for label, arm in arms.items():
        for folder in arm.get("runs", [arm["output_dir"]]):
            path = Path(folder) / "config.json"
            if not path.is_file():
                _fail(f"{label}: no {path} to read the target from; give --target NAME")
            names.add(json.loads(path.read_text())["model"]["embedding_model"])
    if len(names) != 1:
        _fail(f"the arms trained for different Embedding LLMs ({', '.join(sorted(names))}); table one target at a time")
    return names.pop()


def apply_timings(arms: dict[str, dict], specs: list[str]) -> None:
    """Put timing.py's seconds per step (measured with every arm under the same load) in place of the runs'."""
    for spec in specs:
        label, _, file = spec.partition("=")
        if label not in arms:
            _fail(f"--timing {spec!r}: no arm called {label!r} (arms: {', '.join(arms)})")
        path = Path(file)
        if not path.is_file():
            _fail(f"--timing {spec!r}: no {path}; write it with bench/transfer/timing.py first")
        timed = json.loads(path.read_text())
        arms[label].update(
            recorded_seconds_per_step=arms[label]["seconds_per_step"],
            seconds_per_step=timed["seconds_per_step"],
            timing=str(path),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arms", nargs="+", help="LABEL=RUN_FOLDER[,RUN_FOLDER...], one of them scratch=...")
    parser.add_argument("--out", required=True, type=Path, help="folder for results.json, results.md, results.png")
    parser.add_argument(
        "--target", help="the arms' Embedding LLM (the table's row name; default: from their runs' config.json)"
    )
    parser.add_argument("--source-embedding", default="gemma3-270m", help="the source's Embedding LLM")
    parser.add_argument("--eval-every", type=int, required=True, help="the finest evaluation grid of the arms")
    parser.add_argument("--command", default="", help="how the arms were trained, kept in results.json")
    parser.add_argument(
        "--timing",
        action="append",
        default=[],
        help="LABEL=FILE: that arm's seconds per step from timing.py's FILE instead of its runs' (repeatable)",
    )
    args = parser.parse_args()
    arms = load_arms(args.arms)
    target = args.target or target_of(arms)
    apply_timings(arms, args.timing)
    score_steps(arms)
    steps = max(int(step) for arm in arms.values() for step in arm["curve"])
    results = {
        "command": args.command,
        "source_embedding": args.source_embedding,
        "targets": {target: arms},
        "steps": steps,
        "eval_every": args.eval_every,
    }
    write_report(results, args.out)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
