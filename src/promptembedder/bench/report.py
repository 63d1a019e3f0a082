"""Ratios to LoRA, the markdown table and the plots of a bench run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from promptembedder.bench.variants import BASELINE


def _ok(v: dict[str, Any]) -> bool:
    return v.get("status") == "ok"


def final_quality(v: dict[str, Any]) -> float | None:
    """The held-out average after the last step (None when not measured)."""
    if not v.get("quality"):
        return None
    last = max(v["quality"], key=lambda q: q["step"])
    return last["average"] if last["step"] == v.get("steps") else None


def s_per_step_with_documents(v: dict[str, Any]) -> float | None:
    """s/step with the plain documents' one-off forward pass spread over the steps it served: what a run pays
    per step when documents do not repeat (one pass over the data). The same as s/step without a cache build."""
    s = v.get("s_per_step")
    pre, steps = v.get("precompute_documents_s"), v.get("precompute_documents_steps")
    if s is None or not pre:
        return s
    return s + pre / steps if steps else None


def add_ratios(results: dict[str, Any]) -> None:
    """Each variant against LoRA of the same run: speed-up (LoRA s/step over its s/step; once more with the
    documents' cache build counted, see :func:`s_per_step_with_documents`), and memory, trainable parameters,
    tokens/s and final quality as fractions of LoRA's."""
    base = next((v for v in results["variants"] if v["variant"] == BASELINE and _ok(v)), None)
    for v in results["variants"]:
        v.pop("vs_lora", None)
        if base is None or not _ok(v):
            continue
        ratios: dict[str, float] = {}
        if v.get("s_per_step") and base.get("s_per_step"):
            ratios["speedup"] = base["s_per_step"] / v["s_per_step"]
            counted, base_counted = s_per_step_with_documents(v), s_per_step_with_documents(base)
            if counted and base_counted:
                ratios["speedup_documents_counted"] = base_counted / counted
        if v.get("tokens_per_s") and base.get("tokens_per_s"):
            ratios["tokens_per_s"] = v["tokens_per_s"] / base["tokens_per_s"]
        if v.get("peak_memory_bytes") and base.get("peak_memory_bytes"):
            ratios["memory"] = v["peak_memory_bytes"] / base["peak_memory_bytes"]
        if v.get("trainable_params") and base.get("trainable_params"):
            ratios["trainable_params"] = v["trainable_params"] / base["trainable_params"]
        q, qb = final_quality(v), final_quality(base)
        if q is not None and qb:
            ratios["quality"] = q / qb
        v["vs_lora"] = ratios


def _gib(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**30:.2f} GiB"


def _params(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def markdown_table(results: dict[str, Any]) -> str:
    quality = any(v.get("quality") for v in results["variants"])
    head = [
        "variant",
        "s/step (median)",
        "speed-up vs LoRA",
        "speed-up, documents counted",
        "tokens/s",
        "peak memory",
        "memory vs LoRA",
        "trainable params",
        "params vs LoRA",
    ]
    if quality:
        head += ["held-out avg", "quality vs LoRA"]
    head += ["doc cache build"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in results["variants"]:
        r = v.get("vs_lora", {})
        if not _ok(v):
            row = [v["variant"], f"**{v.get('status')}**: {str(v.get('error', ''))[:80]}"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(row) + " |")
            continue
        speed = r.get("speedup")
        row = [
            v["variant"],
            f"{v['s_per_step']:.3f} s",
            "–" if speed is None else f"{speed:.2f}×",
            "–" if r.get("speedup_documents_counted") is None else f"{r['speedup_documents_counted']:.2f}×",
            f"{v['tokens_per_s']:.0f}",
            _gib(v.get("peak_memory_bytes")),
            _pct(r.get("memory")),
            _params(v.get("trainable_params")),
            _pct(r.get("trainable_params")),
        ]
        if quality:
            q = final_quality(v)
            row += ["–" if q is None else f"{100 * q:.2f}", _pct(r.get("quality"))]
        pre = v.get("precompute_documents_s")
        row += ["–" if pre is None else f"{pre:.1f} s"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_report(results: dict[str, Any], out: Path) -> None:
    """``out.md`` (table, settings, per-variant notes) and ``out-quality.png`` / ``out-speed-memory.png``."""
    out = Path(out)
    lines = [f"# {results.get('title') or 'Bench'}", ""]
    if results.get("command"):
        lines += ["```", results["command"], "```", ""]
    devices = sorted({v.get("device") for v in results["variants"] if v.get("device")})
    lines += [
        f"Device: {', '.join(devices) or '?'}; {results['steps']} steps per variant, the first {results['warmup']} "
        "not timed; every ratio is to LoRA measured in the same run.",
        "",
        markdown_table(results),
        "",
        "| variant | what it is |",
        "|---|---|",
    ]
    lines += [f"| {v['variant']} | {v.get('description', '')} |" for v in results["variants"]]
    lines.append("")
    for v in results["variants"]:
        if v.get("loadavg_start") is not None:
            lines.append(
                f"- {v['variant']}: {v.get('threads')} threads, load average {v['loadavg_start']:.1f} -> "
                f"{v.get('loadavg_end') or 0:.1f}, wall {v.get('wall_s', 0):.0f} s"
            )
    tmp = out.with_name(f".{out.stem}.md.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out.with_suffix(".md"))
    plot(results, out)


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [v for v in results["variants"] if _ok(v)]
    if not done:
        return
    if any(v.get("quality") for v in done):
        fig, ax = plt.subplots(figsize=(7, 4))
        for v in done:
            if v.get("quality"):
                points = sorted((q["step"], 100 * q["average"]) for q in v["quality"])
                ax.plot(*zip(*points, strict=True), marker="o", label=v["variant"])
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out average (main metrics)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        _save(fig, out.with_name(f"{out.stem}-quality.png"))
        plt.close(fig)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [v["variant"] for v in done]
    left.barh(names, [v["s_per_step"] for v in done], color="tab:blue")
    left.set_xlabel("seconds per step (median)")
    right.barh(names, [(v.get("peak_memory_bytes") or 0) / 2**30 for v in done], color="tab:orange")
    right.set_xlabel("peak memory (GiB)")
    for axis in (left, right):
        axis.invert_yaxis()
    fig.tight_layout()
    _save(fig, out.with_name(f"{out.stem}-speed-memory.png"))
    plt.close(fig)


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
