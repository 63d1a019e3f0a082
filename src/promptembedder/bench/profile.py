"""Where a training step's time goes: torch.profiler over a few steps of the real Trainer step.

    python -m promptembedder.bench.profile configs/demo.yaml --set batch_size=8 --steps 3

Each phase is labelled (``prompting``: the Prompting LLM's K generation steps; ``embedding/queries`` and
``embedding/documents``: the Embedding LLM; ``backward``; ``optimizer``), so the table says how much CPU
time (and, on a GPU, how many kernel launches and how much device time) each phase costs.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from promptembedder.training.config import TrainConfig, load_config


def _labelled(fn, label: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)

    return wrapper


def _phase_of_documents(trainer, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function("embedding/documents"):
            return fn(*args, **kwargs)

    return wrapper


def profile_training_step(
    config: TrainConfig, *, steps: int = 3, warmup: int = 2, trace: Path | None = None, row_limit: int = 25
) -> dict[str, Any]:
    """Profile ``steps`` Trainer steps after ``warmup`` unprofiled ones; returns per-phase totals and a table."""
    from promptembedder.training.sampler import TaskBatchSampler
    from promptembedder.training.trainer import Trainer, load_training_data

    trainer = Trainer(config)
    acc = trainer.accelerator
    train, _ = load_training_data(config)
    trainer.instructions = sorted({ex.instruction for examples in train.values() for ex in examples})
    sampler = TaskBatchSampler(train, config.batch_size, seed=config.seed, alpha=config.data.mixing_alpha)
    torch.manual_seed(config.seed)
    model = trainer._build_model()
    params = trainer.trainable_parameters(model)
    speed = getattr(config, "speed", None)  # trees from before the speed options have neither of these
    build = getattr(trainer, "build_optimizer", None)
    optimizer = build(params) if build else torch.optim.AdamW(list(params.values()), lr=config.optim.lr)
    ddp_model, optimizer = acc.prepare(model, optimizer)
    model.train()
    if getattr(speed, "precompute_documents", False):  # as the run itself would: the cache filled first
        trainer.precompute_documents(model, sampler, warmup + steps)
    # Label the phases without touching the library code: wrap the callables a step goes through.
    prompting = getattr(model, "prompting", None)
    if prompting is not None:
        prompting.forward = _labelled(prompting.forward, "prompting")
    trainer._documents = _phase_of_documents(trainer, trainer._documents)
    real_backward = acc.backward
    acc.backward = _labelled(real_backward, "backward")
    cuda = torch.cuda.is_available()

    def one_step(batch) -> None:
        with record_function("step"):
            trainer._step(ddp_model, model, batch)
        with record_function("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        one_step(sampler.next_batch())
    if cuda:
        torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    batches = [sampler.next_batch() for _ in range(steps)]
    tic = time.perf_counter()
    with profile(activities=activities) as prof:
        for batch in batches:
            one_step(batch)
        if cuda:
            torch.cuda.synchronize()
    wall = (time.perf_counter() - tic) / steps
    events = prof.key_averages()
    labels = ("prompting", "embedding/documents", "backward", "optimizer", "step")
    phases: dict[str, dict[str, float]] = defaultdict(dict)
    for ev in events:
        if ev.key in labels:
            phases[ev.key]["cpu_ms"] = ev.cpu_time_total / 1000 / steps
            if cuda:
                phases[ev.key]["device_ms"] = getattr(ev, "device_time_total", 0.0) / 1000 / steps
    # aten ops (each one a kernel launch on a GPU, or more) and actual launches.
    if "step" in phases:  # the rest of a step: the queries through the Embedding LLM, the loss
        inner = sum(phases.get(k, {}).get("cpu_ms", 0.0) for k in ("prompting", "embedding/documents", "backward"))
        phases["queries+loss"] = {"cpu_ms": phases["step"]["cpu_ms"] - inner}
    n_ops = sum(ev.count for ev in events if ev.key.startswith("aten::")) / steps
    n_launch = sum(ev.count for ev in events if ev.key in ("cudaLaunchKernel", "cuLaunchKernel")) / steps
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = events.table(sort_by=sort, row_limit=row_limit)
    if trace is not None:
        prof.export_chrome_trace(str(trace))
    return {
        "wall_s_per_step": wall,
        "phases": dict(phases),
        "aten_ops_per_step": n_ops,
        "kernel_launches_per_step": n_launch,
        "device": str(acc.device),
        "table": table,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="YAML training config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value override")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--trace", type=Path, help="write a chrome trace here")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    result = profile_training_step(config, steps=args.steps, warmup=args.warmup, trace=args.trace)
    print(result["table"])
    summary = {k: v for k, v in result.items() if k != "table"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
