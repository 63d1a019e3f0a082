"""One bench variant in its own process: train it with the Trainer, time every step, watch memory, score it.

    python -m promptembedder.bench.worker SPEC.json

SPEC (written by the runner) holds the config dict, the variant's overrides, steps, warm-up, the quality
settings and where to write the result. The result JSON is written atomically when the variant ends, also
when it fails (``status`` then says how: ``oom`` or ``error``).

Memory: on a GPU, ``torch.cuda.max_memory_allocated`` from the model's construction to the last step; on a
CPU, the peak resident set size sampled every few milliseconds over the same span (the process-lifetime
``ru_maxrss``, which includes loading, is recorded too). Quality evaluations pause the memory watch and
run outside the timed steps.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch


class _Done(Exception):
    """Raised from the step hook after the last measured step: no final checkpoint or model save."""


class MemoryWatch:
    """Peak memory over a span: CUDA's allocator peak on a GPU, sampled resident memory on a CPU."""

    def __init__(self, cuda: bool, interval_s: float = 0.005) -> None:
        self.cuda = cuda
        self.interval_s = interval_s
        self.peak = 0
        self.active = threading.Event()
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._thread: threading.Thread | None = None

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except OSError:  # not Linux: the lifetime peak is the best there is
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = max(self.peak, self.rss())
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self.active.set()

    def _sample(self) -> None:
        while not self._stop.is_set():
            if self.active.is_set():
                self.peak = max(self.peak, self.rss())
            time.sleep(self.interval_s)

    def pause(self) -> None:
        if not self.cuda:
            self.peak = max(self.peak, self.rss())
        self.active.clear()

    def resume(self) -> None:
        self.active.set()

    def stop(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = max(self.peak, torch.cuda.max_memory_allocated())
        else:
            self.peak = max(self.peak, self.rss())
            self._stop.set()
        return self.peak


def data_tokens(tokenizer, batch, config) -> int:
    """Tokens of text a step reads (queries, positives, hard negatives, each cut at its max length); the same
    for every variant, so tokens/s compares like with like (soft prompts and instructions not counted)."""
    n_neg = config.data.hard_negatives
    queries = [ex.query for ex in batch.examples]
    docs = [ex.positive for ex in batch.examples] + [t for ex in batch.examples for t in ex.negatives[:n_neg]]
    q = tokenizer(queries, add_special_tokens=True)["input_ids"]
    d = tokenizer(docs, add_special_tokens=True)["input_ids"]
    return sum(min(len(r), config.data.max_query_length) for r in q) + sum(
        min(len(r), config.data.max_document_length) for r in d
    )


def evaluate_quality(model, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Held-out average (and per-task main scores) of the model as it stands."""
    from promptembedder.evaluation.baselines import PromptEmbedderEncoder
    from promptembedder.evaluation.cache import EmbeddingCache
    from promptembedder.evaluation.runner import load_tasks, resolve_data_dir
    from promptembedder.evaluation.tasks import EvalOptions, evaluate_task

    q = spec["quality"]
    tasks = load_tasks(resolve_data_dir(q.get("data_dir")), q["tasks"])
    options = EvalOptions(
        batch_size=q.get("batch_size", 16),
        limit=q.get("limit"),
        max_corpus=q.get("max_corpus"),
        max_chars=q.get("max_chars"),
        n_experiments=q.get("n_experiments", 3),
        progress=False,
    )
    # A shared on-disk cache: plain documents (the frozen backbone's own) are embedded once for every variant
    # and step; anything that depends on trained weights has a new fingerprint and never hits.
    cache = EmbeddingCache(q["cache_dir"]) if q.get("cache_dir") else EmbeddingCache(enabled=False)
    encoder = PromptEmbedderEncoder(model, name)
    fingerprint = encoder.fingerprint()
    tic = time.perf_counter()
    scores = {}
    for task in tasks:
        scores[task.name] = evaluate_task(
            encoder, task, cache=cache, options=options, fingerprint=fingerprint
        ).main_score
    return {"average": sum(scores.values()) / len(scores), "tasks": scores, "seconds": time.perf_counter() - tic}


def _atomic_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def run_variant(spec: dict[str, Any]) -> dict[str, Any]:
    from promptembedder.training.config import apply_overrides, config_from_dict
    from promptembedder.training.trainer import Trainer

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    steps, warmup = int(spec["steps"]), int(spec["warmup"])
    data = apply_overrides(json.loads(json.dumps(spec["config"])), list(spec["overrides"]))
    config = config_from_dict(data)
    cuda = torch.cuda.is_available()
    result: dict[str, Any] = {
        "variant": spec["variant"],
        "description": spec.get("description", ""),
        "overrides": list(spec["overrides"]),
        "config": config.to_dict(),
        "steps": steps,
        "warmup": warmup,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "status": "running",
        "step_s": [],
        "tokens": [],
        "quality": [],
    }
    watch = MemoryWatch(cuda)
    eval_at = set(spec.get("quality", {}).get("at_steps", [])) if spec.get("quality") else set()
    state: dict[str, Any] = {}

    def score(model, step: int) -> None:
        watch.pause()
        quality = evaluate_quality(model, spec["variant"], spec)
        result["quality"].append({"step": step, **quality})
        print(f"[{spec['variant']}] step {step}: held-out average {100 * quality['average']:.2f}", file=sys.stderr)
        watch.resume()

    trainer: Trainer

    def on_step(*, step: int, model, batches, record: dict, **_) -> None:
        if "params" not in state:
            state["params"] = sum(p.numel() for p in trainer.trainable_parameters(model).values())
        result["step_s"].append(record["step_s"])
        result["tokens"].append(sum(data_tokens(model.embedding.tokenizer, b, config) for b in batches))
        result["loss"] = record["loss"]
        if step in eval_at:
            score(model, step)
        if step >= steps:
            raise _Done

    trainer = Trainer(config, on_step=on_step)
    build = trainer._build_model

    def build_and_watch():
        model = build()
        if 0 in eval_at:
            score(model, 0)  # the untrained starting point of the quality curve
        watch.start()  # from here on: model, optimiser, cache build, steps
        state["watching"] = True
        return model

    trainer._build_model = build_and_watch
    tic = time.perf_counter()
    try:
        trainer.run()
    except _Done:
        result["status"] = "ok"
    except torch.cuda.OutOfMemoryError as err:
        result["status"] = "oom"
        result["error"] = str(err).splitlines()[0]
    except Exception as err:  # noqa: BLE001 - a failed variant is a row in the table, not a failed bench
        result["status"] = "error"
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()[-4000:]
    result["wall_s"] = time.perf_counter() - tic
    result["peak_memory_bytes"] = watch.stop() if state.get("watching") else None
    result["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["trainable_params"] = state.get("params")
    result["precompute_documents_s"] = trainer.precompute_s
    result["precompute_documents_steps"] = getattr(trainer, "precompute_steps", None)
    result["loadavg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    timed = result["step_s"][warmup:]
    if timed:
        result["s_per_step"] = statistics.median(timed)
        result["tokens_per_s"] = sum(result["tokens"][warmup:]) / sum(timed)
    return result


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    result = run_variant(spec)
    _atomic_json(Path(spec["out"]), result)
    if result["status"] == "error":
        print(result.get("traceback", result.get("error")), file=sys.stderr)


if __name__ == "__main__":
    main()
