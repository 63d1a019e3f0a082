"""Run several models over the held-out suite and keep the results: JSON, markdown table, bar chart.

Models run one after another (only one is in memory at a time); the JSON is rewritten atomically after
each model, so an interrupted run keeps what it finished, and the embedding cache makes the re-run cheap.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from promptembedder.atomic import write_text
from promptembedder.data import EvalTask, list_eval_tasks, load_eval_task
from promptembedder.evaluation.cache import EmbeddingCache
from promptembedder.evaluation.encoder import Encoder
from promptembedder.evaluation.report import WITHHELD, summarise, write_report
from promptembedder.evaluation.tasks import EvalOptions, evaluate_task

log = logging.getLogger(__name__)
RESULTS_FORMAT = 1


class UnknownTaskError(ValueError):
    """``--tasks`` names a task the data folder does not have."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given; else the full build when its manifest exists; else the in-repo sample."""
    from promptembedder.data import default_data_dir, sample_dir

    if data_dir is not None:
        return Path(data_dir)
    built = default_data_dir()
    if (built / "manifest.json").is_file() and list_eval_tasks(built):
        return built
    log.warning("no built data at %s (run `promptembedder data build`); using the in-repo sample", built)
    return sample_dir()


def with_withheld(tasks: Sequence[EvalTask], which: str = "both") -> list[EvalTask]:
    """``which``: ``trained`` (each task under its own, trained-style instruction), ``withheld`` (under the
    wording no training task uses, where the file has one) or ``both`` (every task, then its withheld copy)."""
    if which not in ("both", "trained", "withheld"):
        raise ValueError(f"instructions={which!r}: choose both, trained or withheld")
    out: list[EvalTask] = []
    for task in tasks:
        withheld = getattr(task, "withheld_instruction", None)
        if which != "withheld" or not withheld:
            out.append(task)
        if which != "trained" and withheld:
            out.append(dataclasses.replace(task, name=task.name + WITHHELD, instruction=withheld))
    return out


def load_tasks(data_dir: str | os.PathLike[str], names: Sequence[str] | None = None) -> list[EvalTask]:
    """The eval tasks under ``data_dir`` (all, or those named by file stem or header name)."""
    paths = list_eval_tasks(data_dir)
    if not paths:
        raise FileNotFoundError(f"no eval/*.jsonl files under {data_dir}")
    wanted = [n.strip() for name in (names or []) for n in name.split(",") if n.strip()]
    if wanted:
        by_stem = {p.stem: p for p in paths}
        missing = [n for n in wanted if n not in by_stem]
        if missing:
            raise UnknownTaskError(f"unknown task(s) {', '.join(missing)}; available: {', '.join(sorted(by_stem))}")
        paths = [by_stem[n] for n in dict.fromkeys(wanted)]
    return [load_eval_task(p) for p in paths]


def _atomic_json(path: Path, obj: dict[str, Any]) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _labels(specs: Sequence[str]) -> list[str]:
    labels, seen = [], {}
    for spec in specs:
        base = Path(spec).name if os.sep in spec and Path(spec).is_dir() else spec
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return labels


def run_eval(
    specs: Sequence[str],
    *,
    out: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    task_names: Sequence[str] | None = None,
    options: EvalOptions | None = None,
    cache: EmbeddingCache | None = None,
    load: Callable[[str], Encoder] | None = None,
    on_result: Callable[[str, str, float], None] | None = None,
    keep_going: bool = False,
    progress: bool | None = None,
    instructions: str = "both",
) -> dict[str, Any]:
    """Evaluate every model spec on every task; write ``out`` (JSON) and its ``.md`` / ``.png`` report.

    ``load`` turns a spec into an :class:`Encoder` (default: :func:`baselines.load_encoder`); tests pass fakes.
    With ``keep_going`` a model that fails to load or to run a task is recorded with its error (its row of
    the report says why) and the others still run; otherwise the error propagates. ``progress`` shows a bar
    ("model 3/6: NAME", the task running, tasks done and an ETA); ``None``: on when stderr is a terminal.
    ``instructions`` picks the instruction sets (see :func:`with_withheld`); withheld copies are reported as
    ``NAME@withheld`` and averaged apart.
    """
    if load is None:
        from promptembedder.evaluation.baselines import load_encoder, parse_spec

        for spec in specs:  # fail on a bad spec before loading any model
            parse_spec(spec)
        load = load_encoder
    options = options or EvalOptions()
    cache = cache if cache is not None else EmbeddingCache()
    out = Path(out)
    started = time.perf_counter()
    data = resolve_data_dir(data_dir)
    tasks = with_withheld(load_tasks(data, task_names), instructions)
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_dir": str(data),
        "options": dataclasses.asdict(options),
        "tasks": [
            {
                "name": t.name,
                "task_type": t.task_type,
                "source": t.source,
                "data_hash": t.data_hash,
                "size": len(t),
                "instruction": t.instruction,
                "instruction_set": "withheld" if t.name.endswith(WITHHELD) else "trained",
            }
            for t in tasks
        ],
        "models": [],
    }
    # tqdm's disable=None: on only when stderr is a terminal.
    disable = None if progress is None else not progress
    bar = tqdm(total=len(specs) * len(tasks), unit="task", disable=disable, dynamic_ncols=True, file=sys.stderr)
    n = len(specs)
    for i, (spec, label) in enumerate(zip(specs, _labels(specs), strict=True), start=1):
        t0 = time.perf_counter()
        bar.set_description(f"model {i}/{n}: {label}")
        entry: dict[str, Any] = {"label": label, "spec": spec, "tasks": {}}
        results["models"].append(entry)
        encoder = None
        done = 0
        try:
            bar.set_postfix_str("loading")
            encoder = load(spec)
            fingerprint = encoder.fingerprint()
            entry.update(
                name=getattr(encoder, "name", label),
                fingerprint=fingerprint,
                load_s=round(time.perf_counter() - t0, 2),
            )
            for task in tasks:
                bar.set_postfix_str(task.name)
                res = evaluate_task(encoder, task, cache=cache, options=options, fingerprint=fingerprint)
                entry["tasks"][task.name] = res.to_dict()
                done += 1
                bar.update()
                if on_result is not None:
                    on_result(label, task.name, res.main_score)
        except Exception as err:  # noqa: BLE001 - with keep_going any failure becomes that model's row
            if not keep_going:
                bar.close()
                raise
            entry["error"] = f"{type(err).__name__}: {err}".strip().splitlines()[0][:300]
            log.error("model %d/%d (%s) failed: %s", i, n, label, entry["error"])
            bar.update(len(tasks) - done)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        del encoder
        gc.collect()
        _finish(results, out, started, cache)
    bar.close()
    return results


def _finish(results: dict[str, Any], out: Path, started: float, cache: EmbeddingCache) -> None:
    results["wall_time_s"] = round(time.perf_counter() - started, 2)
    results["cache"] = {"root": str(cache.root), "enabled": cache.enabled, "hits": cache.hits, "misses": cache.misses}
    results["summary"] = summarise(results)
    _atomic_json(out, results)
    write_report(results, out)
