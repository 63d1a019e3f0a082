"""Early stopping replayed on recorded dev curves: which ``patience`` keeps the best model for the fewest steps.

    python bench/transfer/patience.py --patience 2 3 4 5 6 --out bench/results/transfer/round13/patience \
        smollm2-s0=bench/results/transfer/round10/tb150-deep5-arm.json \
        qwen-s0=bench/results/transfer/round11/qwen-seed0/transfer-vocab+deep5/arm.json

Each ``LABEL=FILE`` is an arm's ``arm.json`` (bench/transfer/run.py) from a run that trained all its steps with
``patience: 0``. The replay feeds its dev evaluations, in order, to the Trainer's own ``plateaued`` rule, as the
training loop does: the evaluation before the first step (step 0) and the one after the last step are not part of
it. Where the rule fires, the run would have stopped there, and ``restore_best`` would have saved the best
evaluation so far; where it never fires, the run trains all its steps and saves the best evaluation of all.
Same data, same seed: the replay is exact up to where the real run stopped, because a stopped run's evaluations
are the full run's evaluations until then.

Writes ``results.json``, ``results.md`` (one row per patience: the steps run and the score kept, per run and on
average, against training all steps) and ``results.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptembedder.atomic import write_text
from promptembedder.training.trainer import plateaued


def replay(curve: dict[int, float], patience: int, min_delta: float = 0.0) -> tuple[int, float]:
    """The step a run with this patience stops at, and the dev score restore_best keeps.

    >>> curve = {0: 0.3, 15: 0.6, 30: 0.5, 45: 0.55, 60: 0.58, 75: 0.7, 90: 0.72}
    >>> replay(curve, patience=3), replay(curve, patience=4)
    ((60, 0.6), (90, 0.72))
    """
    steps = sorted(curve)
    last = steps[-1]
    seen: list[float] = []
    for step in steps:
        if step in (0, last):  # step 0 is the bench's extra evaluation; the last one follows the loop
            continue
        seen.append(curve[step])
        if patience and plateaued(seen, patience, min_delta):
            return step, max(seen)
    return last, max([*seen, curve[last]])


def read_curve(path: Path) -> dict[int, float]:
    curve = json.loads(path.read_text())["curve"]
    return {int(step): float(score) for step, score in curve.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=ARM_JSON, one per recorded run.")
    parser.add_argument("--patience", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--min-delta", type=float, default=0.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    curves: dict[str, dict[int, float]] = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"error: {item!r} is not LABEL=ARM_JSON with an existing file")
        curves[label] = read_curve(Path(path))

    rows = []
    for patience in [0, *args.patience]:
        per_run = {label: replay(curve, patience, args.min_delta) for label, curve in curves.items()}
        rows.append(
            {
                "patience": patience,
                "runs": {label: {"stopped_at": s, "kept": k} for label, (s, k) in per_run.items()},
                "mean_steps": sum(s for s, _ in per_run.values()) / len(per_run),
                "mean_kept": sum(k for _, k in per_run.values()) / len(per_run),
            }
        )
    full = rows[0]
    head = "| patience | " + " | ".join(curves) + " | mean steps | mean score kept | vs all steps |"
    lines = [head, "|" + "---|" * (len(curves) + 4)]
    for row in rows:
        cells = [f"{r['stopped_at']} / {r['kept']:.3f}" for r in row["runs"].values()]
        name = "0 (all steps)" if row["patience"] == 0 else str(row["patience"])
        gap = row["mean_kept"] - full["mean_kept"]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {row['mean_steps']:.0f} | {row['mean_kept']:.3f} | {gap:+.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "results.json", json.dumps({"curves": curves, "rows": rows}, indent=1) + "\n")
    note = "Cells: step the run stops at / dev score restore_best keeps.\n\n"
    write_text(args.out / "results.md", note + table + "\n")
    plot(rows, args.out / "results.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ordered = sorted(rows, key=lambda r: (r["mean_steps"], r["patience"]))
    ax.plot([r["mean_steps"] for r in ordered], [r["mean_kept"] for r in ordered], "o-", color="tab:blue")
    for i, r in enumerate(ordered):  # alternate the labels above and below: neighbours often sit close
        ax.annotate(
            f"patience {r['patience'] or 'off'}",
            (r["mean_steps"], r["mean_kept"]),
            xytext=(-30, 8 if i % 2 else -14),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel("mean steps trained")
    ax.set_ylabel("mean dev MRR@10 kept")
    ax.set_title("Early stopping on recorded transfer curves")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
