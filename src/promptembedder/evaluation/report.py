"""The side-by-side report: one markdown table and one bar chart, written next to the results JSON.

Scores are shown x100 (as MTEB's leaderboard shows them). Rows are the tasks grouped by type, then one
average per task type, then the average over task types (each type weighs the same however many tasks it
has) and the plain average over tasks.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

TYPE_ORDER = ("retrieval", "reranking", "sts", "classification", "clustering", "pair_classification")


WITHHELD = "@withheld"  # suffix of a task evaluated under its withheld instruction (see runner.with_withheld)


def _averages(scores_by_type: dict[str, list[float]]) -> dict[str, float]:
    summary = {t: float(np.mean(v)) for t, v in sorted(scores_by_type.items(), key=lambda kv: _type_rank(kv[0]))}
    scores = [s for v in scores_by_type.values() for s in v]
    summary["avg_types"] = float(np.mean(list(summary.values()))) if summary else float("nan")
    summary["avg_tasks"] = float(np.mean(scores)) if scores else float("nan")
    return summary


def summarise(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model (by label): each task type's mean main score, ``avg_types`` and ``avg_tasks``, over the
    tasks under their trained-style instructions; where withheld instructions were run, the same averages
    over those as ``withheld_<key>``."""
    out: dict[str, dict[str, float]] = {}
    for model in results["models"]:
        trained: dict[str, list[float]] = defaultdict(list)
        withheld: dict[str, list[float]] = defaultdict(list)
        for name, res in model["tasks"].items():
            (withheld if name.endswith(WITHHELD) else trained)[res["task_type"]].append(res["main_score"])
        summary = _averages(trained)
        if withheld:
            summary.update({f"withheld_{k}": v for k, v in _averages(withheld).items()})
        out[model["label"]] = summary
    return out


def _type_rank(task_type: str) -> int:
    return TYPE_ORDER.index(task_type) if task_type in TYPE_ORDER else len(TYPE_ORDER)


def _cell(value: float | None) -> str:
    return "–" if value is None or np.isnan(value) else f"{100 * value:.2f}"


def markdown_table(results: dict[str, Any]) -> str:
    """Models as columns; tasks (with their metric), per-type averages and overall averages as rows."""
    models = results["models"]
    labels = [m["label"] for m in models]
    tasks = sorted(
        results["tasks"], key=lambda t: (t["name"].endswith(WITHHELD), _type_rank(t["task_type"]), t["name"])
    )
    lines = ["| task | type | metric | " + " | ".join(labels) + " |", "|---|---|---|" + "---:|" * len(labels)]
    for t in tasks:
        cells = []
        for m in models:
            res = m["tasks"].get(t["name"])
            if res is None:
                cells.append("failed" if m.get("error") else "–")
                continue
            cells.append(_cell(res["main_score"]) + ("*" if res.get("subsampled") else ""))  # * marks a cut task
        metric = next((m["tasks"][t["name"]]["main_metric"] for m in models if t["name"] in m["tasks"]), "")
        lines.append(f"| {t['name']} | {t['task_type']} | {metric} | " + " | ".join(cells) + " |")
    summary = summarise(results)
    types = sorted({t["task_type"] for t in tasks if not t["name"].endswith(WITHHELD)}, key=_type_rank)
    for ttype in types:
        lines.append(f"| **{ttype} avg** | | | " + " | ".join(_cell(summary[lb].get(ttype)) for lb in labels) + " |")
    has_withheld = any(t["name"].endswith(WITHHELD) for t in tasks)
    for prefix, title in [("", "trained-style instructions" if has_withheld else "")] + (
        [("withheld_", "withheld instructions")] if has_withheld else []
    ):
        label = f" ({title})" if title else ""
        avg = [f"**{_cell(summary[lb].get(prefix + 'avg_types'))}**" for lb in labels]
        lines.append(f"| **average over types{label}** | | | " + " | ".join(avg) + " |")
        lines.append(
            f"| **average over tasks{label}** | | | "
            + " | ".join(_cell(summary[lb].get(prefix + "avg_tasks")) for lb in labels)
            + " |"
        )
    notes = [
        f"- `{m['label']}`: {m['spec']} "
        + (f"**failed**: {m['error']}" if m.get("error") else f"(fingerprint {m['fingerprint']})")
        for m in models
    ]
    cut = sorted({name for m in models for name, r in m["tasks"].items() if r.get("subsampled")})
    if cut:
        notes.append("- `*` subsampled: " + "; ".join(_cut_note(results, name) for name in cut))
    options = results.get("options", {})
    if options.get("max_chars"):
        notes.append(f"- texts cut to about {options['max_chars']} characters before embedding")
    if options.get("n_experiments", 10) != 10 or options.get("samples_per_label", 8) != 8:
        notes.append(
            f"- classification: {options['samples_per_label']} examples per label, "
            f"{options['n_experiments']} draws (MTEB: 8 and 10)"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _cut_note(results: dict[str, Any], name: str) -> str:
    for m in results["models"]:
        if name in m["tasks"] and m["tasks"][name].get("subsampled"):
            parts = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in m["tasks"][name]["subsampled"].items())
            return f"{name} ({parts})"
    return name


def bar_chart(results: dict[str, Any], path: str | Path) -> Path:
    """Grouped bars: per task type (and the average over types), one bar per model."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    summary = summarise(results)
    labels = list(summary)
    groups = sorted(
        {k for s in summary.values() for k in s if "avg_" not in k and not k.startswith("withheld_")}, key=_type_rank
    )
    groups.append("avg_types")
    if any("withheld_avg_types" in s for s in summary.values()):
        groups.append("withheld_avg_types")
    x = np.arange(len(groups))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(min(16.0, 2.0 + 0.9 * len(groups) + 0.25 * len(groups) * len(labels)), 5.0))
    for i, label in enumerate(labels):
        values = [100 * summary[label].get(g, np.nan) for g in groups]
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, values, width, label=label)
    names = {"avg_types": "average", "withheld_avg_types": "average\n(withheld\ninstructions)"}
    ax.set_xticks(x, [names.get(g, g.replace("_", "\n")) for g in groups])
    ax.set_ylabel("main score (x100)")
    ax.set_title("Held-out suite, per task type")
    # Below the axes, so the legend never hides a bar.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(3, len(labels)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(results: dict[str, Any], json_path: str | Path) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.png`` beside ``json_path``; returns both paths."""
    json_path = Path(json_path)
    md = json_path.with_suffix(".md")
    header = f"# Evaluation: {len(results['tasks'])} tasks, {len(results['models'])} models\n\n"
    timing = f"Wall time {results.get('wall_time_s', float('nan')):.0f} s. Data: `{results.get('data_dir')}`.\n\n"
    tmp = md.with_name(f".{md.name}.tmp")
    tmp.write_text(header + timing + markdown_table(results), encoding="utf-8")
    tmp.replace(md)
    return md, bar_chart(results, json_path.with_suffix(".png"))
