"""Put models from several `promptembedder eval` runs of the held-out suite into one table and one chart.

Each run scores its own models; this joins them as the library's own report would, after checking that every
run used the same options and the same task data (the same subsample, so the columns compare). A model is
``LABEL=RESULTS_JSON`` (the run's only model) or ``LABEL=RESULTS_JSON@MODEL_LABEL`` (one of several)::

    python bench/training/suite_table.py --out bench/results/training/issue14/round4/suite \\
        "lora=runs/eval-lora/results.json" \\
        "minilm=bench/results/training/issue14/round3/suite-minilm/results.json@minilm"

``--reference LABEL`` adds a short table of each model's average over task types (withheld instructions, where
run, and trained-style) as a share of that model's: the transfer bench's "at least 97% of scratch".
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from promptembedder.atomic import write_text
from promptembedder.evaluation.report import summarise, write_report


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _pick(spec: str) -> tuple[str, dict, dict]:
    label, _, where = spec.partition("=")
    path, _, wanted = where.partition("@")
    if not label or not path:
        _fail(f"{spec!r}: give LABEL=RESULTS_JSON[@MODEL_LABEL]")
    if not Path(path).is_file():
        _fail(f"{spec!r}: no file {path} (a `promptembedder eval --out` results.json)")
    results = json.loads(Path(path).read_text())
    models = [m for m in results["models"] if not wanted or m["label"] == wanted]
    if len(models) != 1:
        found = ", ".join(m["label"] for m in results["models"])
        _fail(f"{spec!r}: name one model of {path} after '@' (it holds: {found})")
    return label, results, {**copy.deepcopy(models[0]), "label": label}


def _task_key(results: dict) -> list[tuple]:
    return sorted((t["name"], t.get("instruction_set"), t["data_hash"]) for t in results["tasks"])


def relative_table(summary: dict[str, dict[str, float]], reference: str) -> str:
    """Each model's average over task types, withheld and trained-style, and its share of ``reference``'s."""
    if reference not in summary:
        _fail(f"--reference {reference!r} is none of the models' labels ({', '.join(summary)})")
    ref = summary[reference]
    keys = [k for k in ("withheld_avg_types", "avg_types") if k in ref]
    heads = {"withheld_avg_types": "withheld", "avg_types": "trained-style"}
    lines = [
        "| model | " + " | ".join(f"{heads[k]} | % of {reference}" for k in keys) + " |",
        "|---|" + "---:|---:|" * len(keys),
    ]
    for label, scores in summary.items():
        cells = [f"{100 * scores[k]:.2f} | {100 * scores[k] / ref[k]:.1f}%" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="LABEL=RESULTS_JSON[@MODEL_LABEL]")
    parser.add_argument("--out", required=True, type=Path, help="folder for results.json, .md and .png")
    parser.add_argument("--reference", help="a model's LABEL: also write every model's share of its averages")
    args = parser.parse_args()
    picked = [_pick(spec) for spec in args.models]
    first = picked[0][1]
    for spec, (_, results, _) in zip(args.models, picked, strict=True):
        if results["options"] != first["options"] or _task_key(results) != _task_key(first):
            _fail(f"{spec!r} ran other options or other task data than {args.models[0]!r}")
    merged = {**copy.deepcopy(first), "models": [model for _, _, model in picked]}
    merged["wall_time_s"] = sum(m.get("seconds", 0.0) for m in merged["models"])
    merged["merged_from"] = list(args.models)
    merged["summary"] = summarise(merged)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "results.json", json.dumps(merged, indent=2))
    md, png = write_report(merged, args.out / "results.json")
    print(md.read_text())
    print(f"wrote {args.out / 'results.json'}, {md} and {png}")
    if args.reference:
        table = relative_table(merged["summary"], args.reference)
        write_text(args.out / "relative.md", table)
        print(table)
        print(f"wrote {args.out / 'relative.md'}")


if __name__ == "__main__":
    main()
