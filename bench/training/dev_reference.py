"""A training run's dev score beside any encoder's, on exactly the dev queries the run held out.

The trainer logs dev mean MRR@10 over its held-out slice (``data.dev_per_task`` queries a task, each ranked
among that task's dev positives). That number means little alone: this scores baselines on the same slice.

    OMP_NUM_THREADS=1 python bench/training/dev_reference.py --data DATA/train \
        -m baseline:gemma3-270m:mean -m "untrained:smollm2-135m->gemma3-270m" \
        --out bench/results/training/issue14/dev-reference.json

Prints a table (mean and per task) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from promptembedder.atomic import write_text
from promptembedder.evaluation.baselines import load_encoder
from promptembedder.training.config import load_config
from promptembedder.training.trainer import dev_scores, load_training_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="The training files the run used (data.train_files).")
    parser.add_argument("-m", "--model", action="append", required=True, help="An eval model spec; repeatable.")
    parser.add_argument("--config", default="full", help="The run's recipe, for its dev slice and seed.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    config = load_config(args.config, [f"data.train_files=[{args.data}]"])
    _, dev = load_training_data(config)
    results: dict[str, dict[str, float]] = {}
    for spec in args.model:
        tic = time.perf_counter()
        encoder = load_encoder(spec, seed=config.seed)
        results[spec] = dev_scores(
            functools.partial(encoder.encode_queries, batch_size=16),
            functools.partial(encoder.encode_documents, batch_size=16),
            dev,
        )
        results[spec]["seconds"] = round(time.perf_counter() - tic, 1)
    table = Table(title=f"dev MRR@10 ({sum(map(len, dev.values()))} queries, {len(dev)} tasks)")
    table.add_column("task")
    for spec in args.model:
        table.add_column(spec, justify="right")
    for task in sorted(dev):
        table.add_row(task, *(f"{results[s].get(f'dev/{task}/mrr@10', float('nan')):.3f}" for s in args.model))
    table.add_row("[b]mean[/b]", *(f"[b]{results[s]['dev/mean_mrr@10']:.3f}[/b]" for s in args.model))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps({"data": args.data, "config": args.config, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
