"""Encode throughput of a PromptEmbedder on this machine: texts/s for texts of a fixed token length.

    python bench/encode_throughput.py --prompting smollm2-135m --embedding gemma3-270m --tokens 32 --texts 512

Prints a table and writes bench/results/encode_throughput.json.
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


def texts_of_length(tokenizer, n_texts: int, n_tokens: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n_texts):
        words = []
        while len(tokenizer(" ".join(words), add_special_tokens=True)["input_ids"]) < n_tokens:
            words.append(rng.choice(WORDS))
        out.append(" ".join(words))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompting", default="smollm2-135m")
    parser.add_argument("--embedding", default="gemma3-270m")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default="bench/results/encode_throughput.json")
    args = parser.parse_args()

    started = time.perf_counter()
    model = PromptEmbedder.from_models(args.prompting, args.embedding, device="cpu")
    load_s = time.perf_counter() - started
    texts = texts_of_length(model.embedding.tokenizer, args.texts, args.tokens)
    instruction = "Retrieve passages that answer the question"
    model.encode(texts[: args.batch_size], instruction=instruction, batch_size=args.batch_size)  # warm-up
    rows = []
    for label, kwargs in [("query (soft prompt)", {"instruction": instruction}), ("plain (no prompt)", {})]:
        t0 = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, **kwargs)
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "side": label,
                "texts": len(texts),
                "seconds": round(seconds, 2),
                "texts_per_s": round(len(texts) / seconds, 1),
            }
        )
    result = {
        "prompting": args.prompting,
        "embedding": args.embedding,
        "tokens_per_text": args.tokens,
        "batch_size": args.batch_size,
        "load_seconds": round(load_s, 1),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "rows": rows,
    }
    print(f"load: {load_s:.1f} s  ({args.prompting} -> {args.embedding}, {torch.get_num_threads()} threads)")
    print("| side | texts | seconds | texts/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['side']} | {r['texts']} | {r['seconds']} | {r['texts_per_s']} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
