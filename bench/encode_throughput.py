"""Encode throughput: a cached-prompt PromptEmbedder against the same frozen backbone with no prompt.

    OMP_NUM_THREADS=1 python bench/encode_throughput.py --tokens 32 128 --texts 64 32

For each text length (tokens, as the Embedding LLM counts them) the same texts are embedded three ways:

- ``cached prompt``: ``encode(texts, instruction=...)`` after one warm-up call, so the soft prompt comes
  from the cache (the Prompting LLM does not run): the serving case;
- ``no prompt``: ``encode(texts)`` through the same PromptEmbedder: the bare frozen backbone, same batching;
- ``raw transformers``: the backbone's own forward on tokenizer-padded batches with mean pooling, for
  reference (no soft prompt, no sorting).

The ratio cached/no-prompt is the price of the soft prompt (K extra positions per text). Each row is the
best of ``--repeats`` timings, the three ways taking turns. Prints a table and writes
bench/results/encode/<prompting>-<embedding>-<device>.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import torch

from promptembedder import PromptEmbedder

WORDS = (
    "river mountain city market guitar bread king queen child garden window morning evening story music "
    "science history water light paper letter friend teacher doctor engine ocean forest winter summer"
).split()
INSTRUCTION = "Retrieve passages that answer the question"


def texts_of_length(tokenizer, n_texts: int, n_tokens: int, seed: int = 0) -> list[str]:
    """Texts of exactly ``n_tokens`` tokens (special tokens included) where the vocabulary allows it."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_texts):
        words: list[str] = []
        while len(tokenizer(" ".join(words), add_special_tokens=True)["input_ids"]) < n_tokens:
            words.append(rng.choice(WORDS))
        out.append(" ".join(words))
    return out


def raw_backbone(model: PromptEmbedder, texts: list[str], batch_size: int) -> None:
    embedding = model.embedding
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = embedding.tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
            batch = batch.to(embedding.device)
            hidden = embedding.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).float().cpu()


def best_seconds(ways: dict, repeats: int) -> dict[str, float]:
    """Best time of each way; the ways take turns within each repeat, so a shared machine's changing load
    falls on all of them alike and the ratios stay fair."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompting", default="smollm2-135m")
    parser.add_argument("--embedding", default="gemma3-270m")
    parser.add_argument("--tokens", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--texts", type=int, nargs="+", default=[64, 32], help="texts per length (one or one each)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--out", default="bench/results/encode")
    args = parser.parse_args()
    counts = args.texts if len(args.texts) == len(args.tokens) else args.texts[:1] * len(args.tokens)

    started = time.perf_counter()
    model = PromptEmbedder.from_models(args.prompting, args.embedding, device=args.device)
    load_s = time.perf_counter() - started
    rows = []
    for n_tokens, n_texts in zip(args.tokens, counts, strict=True):
        texts = texts_of_length(model.embedding.tokenizer, n_texts, n_tokens)
        model.encode(texts[: args.batch_size], instruction=INSTRUCTION, batch_size=args.batch_size)  # warm-up
        ways = {
            "cached prompt": lambda t=texts: model.encode(t, instruction=INSTRUCTION, batch_size=args.batch_size),
            "no prompt": lambda t=texts: model.encode(t, batch_size=args.batch_size),
            "raw transformers": lambda t=texts: raw_backbone(model, t, args.batch_size),
        }
        timed = best_seconds(ways, args.repeats)
        for name, seconds in timed.items():
            rows.append(
                {
                    "tokens": n_tokens,
                    "way": name,
                    "texts": n_texts,
                    "seconds": round(seconds, 3),
                    "texts_per_s": round(n_texts / seconds, 2),
                    "vs_no_prompt": round(timed["no prompt"] / seconds, 3),
                }
            )
    result = {
        "prompting": args.prompting,
        "embedding": args.embedding,
        "num_soft_tokens": model.config.num_soft_tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "device": str(model.device),
        "dtype": str(model.embedding.dtype),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "load_seconds": round(load_s, 1),
        "rows": rows,
    }
    lines = [
        f"{args.prompting} -> {args.embedding}, K={model.config.num_soft_tokens}, batch {args.batch_size}, "
        f"{result['device']} {result['dtype']}, {result['threads']} threads, best of {args.repeats}",
        "",
        "| tokens | way | texts | seconds | texts/s | vs no prompt |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tokens']} | {r['way']} | {r['texts']} | {r['seconds']} | {r['texts_per_s']} | "
            f"{100 * r['vs_no_prompt']:.1f}% |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{args.prompting}-{args.embedding}-{result['device'].split(':')[0]}"
    for path, text in ((stem.with_suffix(".json"), json.dumps(result, indent=2)), (stem.with_suffix(".md"), table)):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
