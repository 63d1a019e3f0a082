"""Run bench variants one after another, each in its own process, and compare them with LoRA.

Separate processes give every variant a clean allocator and its own peak-memory figure, and keep one
variant's compiled code, caches or fragmentation out of the next one's numbers. The results JSON is
rewritten atomically after every variant, with the markdown table and the plots beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from promptembedder.bench.report import add_ratios, write_report
from promptembedder.bench.variants import Variant

RESULTS_FORMAT = 1
MIN_START_S = 20.0  # a variant needs at least this long (process start, model build, a few steps)

# The CPU bench's shared settings: the packaged models, the in-repo data sample, short texts, no dev slice
# (quality is measured on held-out eval tasks instead), no checkpoints during the measured steps.
CPU_DEFAULTS = (
    "model.prompting_model=smollm2-135m",
    "model.embedding_model=gemma3-270m",
    "batch_size=8",
    "data.max_query_length=32",
    "data.max_document_length=48",
    "data.hard_negatives=1",
    "data.dev_per_task=0",
    "optim.warmup_steps=4",
    "speed.fused_optimizer=true",
    "log_every=1",
    "eval_every=0",
)


@dataclass
class QualitySettings:
    """Held-out quality measured inside each variant's process at ``at_steps`` (0: before training)."""

    tasks: list[str] = field(default_factory=lambda: ["wordnet_example_gloss", "wordnet_sense_reranking"])
    at_steps: list[int] = field(default_factory=list)
    limit: int | None = 32
    max_corpus: int | None = 64
    max_chars: int | None = 256
    batch_size: int = 16
    n_experiments: int = 3
    data_dir: str | None = None
    cache_dir: str | None = None


def _atomic_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def run_bench(
    variants: Sequence[Variant],
    *,
    config: dict[str, Any],
    steps: int,
    warmup: int,
    out: str | os.PathLike,
    quality: QualitySettings | None = None,
    threads: int | None = None,
    timeout_s: float | None = None,
    command: str = "",
    title: str = "",
    env: dict[str, str] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Train every variant for ``steps`` steps in its own process; write ``out`` (JSON), ``.md`` and plots.

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole run: a variant gets at most the time left,
    and one that cannot start with a useful margin is recorded as skipped.
    """
    from promptembedder.training.config import config_from_dict

    out = Path(out)
    config = config_from_dict(config).to_dict()  # every default written out once, the same for all variants
    if warmup >= steps:
        raise ValueError(f"warmup={warmup} must be smaller than steps={steps}: no step would be measured")
    runs = out.parent / f"{out.stem}-runs"
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "steps": steps,
        "warmup": warmup,
        "quality": None if quality is None else quality.__dict__,
        "variants": [],
    }
    started = time.perf_counter()
    bar = tqdm(variants, desc="bench", unit="variant")
    for variant in bar:
        bar.set_postfix(variant=variant.name)
        spec = {
            "variant": variant.name,
            "description": variant.description,
            # The learning-rate schedule is that of a ``steps``-step run; no checkpoint interrupts the steps.
            "overrides": [
                *variant.overrides,
                f"output_dir={runs / variant.name}",
                f"steps={steps}",
                "checkpoint_every=1000000000",
            ],
            "config": config,
            "steps": steps,
            "warmup": warmup,
            "threads": threads,
            "quality": None if quality is None else quality.__dict__,
            "out": str(runs / f"{variant.name}.json"),
        }
        limit = timeout_s
        if deadline is not None:
            left = deadline - time.monotonic()
            if left < MIN_START_S:
                results["variants"].append(
                    {**{k: spec[k] for k in ("variant", "description")}, "status": "skipped", "error": "time budget"}
                )
                continue
            limit = left if limit is None else min(limit, left)
        results["variants"].append(_run_one(spec, limit, env))
        add_ratios(results)
        results["wall_s"] = time.perf_counter() - started
        _atomic_json(out, results)
        write_report(results, out)
    return results


def _run_one(spec: dict[str, Any], timeout_s: float | None, env: dict[str, str] | None) -> dict[str, Any]:
    result_path = Path(spec["out"])
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=result_path.parent) as f:
        json.dump(spec, f)
        spec_path = f.name
    child_env = {**os.environ, **(env or {})}
    if spec.get("threads"):
        child_env["OMP_NUM_THREADS"] = str(spec["threads"])
    cmd = [sys.executable, "-m", "promptembedder.bench.worker", spec_path]
    tic = time.perf_counter()
    try:
        # The child's progress bar and messages go straight to this terminal.
        proc = subprocess.run(cmd, env=child_env, timeout=timeout_s, check=False)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    finally:
        os.unlink(spec_path)
    if result_path.is_file():
        return json.loads(result_path.read_text())
    return {
        "variant": spec["variant"],
        "description": spec["description"],
        "status": "timeout" if code == "timeout" else "crashed",
        "error": f"worker exit {code} after {time.perf_counter() - tic:.0f} s without a result",
    }
