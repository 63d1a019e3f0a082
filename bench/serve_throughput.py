"""Throughput of ``promptembedder serve`` under concurrent clients against in-process ``encode``.

    OMP_NUM_THREADS=1 python bench/serve_throughput.py --prompting smollm2-135m --embedding gemma3-270m \
        --clients 32 --requests 4 --tokens 32

An untrained PromptEmbedder (speed depends on shapes only) is saved to a temp folder and exported as a task
bundle; the bundle is served in a subprocess (so the server, not this load generator, owns its core), and
``--clients`` asyncio clients each send ``--requests`` requests of ``--texts-per-request`` texts one after
another. Then, with the server stopped, the same texts go through ``PromptEmbedder.encode`` in this process at
batch size clients x texts-per-request (what the server can batch at most). The in-process arm runs before
and after the server arm, to show how much the machine drifted. Prints a table and writes
bench/results/serve/serve_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from encode_throughput import texts_of_length  # bench/ is on the path when this file is run

from promptembedder import PromptEmbedder
from promptembedder.serving import export_bundle

INSTRUCTION = "Retrieve passages that answer the question"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited during start-up (status {server.returncode})")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not come up")


async def _load(url: str, batches: list[list[list[str]]]) -> tuple[float, list[float], list[np.ndarray]]:
    """Each client sends its requests one after another; returns wall seconds, latencies, vectors in order."""
    latencies: list[float] = []
    vectors: list[list[np.ndarray]] = [[] for _ in batches]
    limits = httpx.Limits(max_connections=len(batches), max_keepalive_connections=len(batches))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:

        async def client(c: int) -> None:
            for texts in batches[c]:
                t0 = time.perf_counter()
                response = await http.post(
                    "/v1/embeddings", json={"input": texts, "model": "search", "encoding_format": "base64"}
                )
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()
                for item in response.json()["data"]:
                    vectors[c].append(np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4"))

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(len(batches))))
        wall = time.perf_counter() - started
    return wall, latencies, [v for per_client in vectors for v in per_client]


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def _in_process(model: PromptEmbedder, texts: list[str], batch_size: int) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    vectors = model.encode(texts, instruction=INSTRUCTION, batch_size=batch_size)
    return time.perf_counter() - t0, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompting", default="smollm2-135m")
    parser.add_argument("--embedding", default="gemma3-270m")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4, help="Requests per client, sent one after another.")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=32, help="Tokens per text (the Embedding LLM's tokenizer).")
    parser.add_argument("--batch-window-ms", type=float, default=None, help="Passed to serve (default: serve's).")
    parser.add_argument("--out", default="bench/results/serve/serve_throughput.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    threads = os.environ.get("OMP_NUM_THREADS")
    load_before = os.getloadavg()
    model = PromptEmbedder.from_models(args.prompting, args.embedding, device="cpu")
    model.save_pretrained(work / "model")
    export_bundle(model, {"search": INSTRUCTION}, work / "bundle")
    n_texts = args.clients * args.requests * args.texts_per_request
    texts = texts_of_length(model.embedding.tokenizer, n_texts, args.tokens)
    batch_size = args.clients * args.texts_per_request
    per = args.texts_per_request
    # Client c's r-th request carries texts[(r * clients + c) * per : ... + per]: round r is one full batch.
    batches = [
        [texts[(r * args.clients + c) * per : (r * args.clients + c + 1) * per] for r in range(args.requests)]
        for c in range(args.clients)
    ]
    order = [
        (r * args.clients + c) * per + k for c in range(args.clients) for r in range(args.requests) for k in range(per)
    ]

    model.encode(texts[:batch_size], instruction=INSTRUCTION, batch_size=batch_size)  # warm-up
    before_s, expected = _in_process(model, texts, batch_size)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "promptembedder", "serve", str(work / "bundle"), "--port", str(port)]
    command += ["--device", "cpu", "--log-level", "warning"]
    if args.batch_window_ms is not None:
        command += ["--batch-window-ms", str(args.batch_window_ms)]
    server = subprocess.Popen(command, env=dict(os.environ))
    try:
        _wait_healthy(url, server)
        asyncio.run(_load(url, [[texts[:per]] for _ in range(args.clients)]))  # warm-up: one round
        warm = httpx.get(f"{url}/metrics").text
        wall, latencies, served = asyncio.run(_load(url, batches))
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    calls = _metric(metrics, "promptembedder_batch_texts_count") - _metric(warm, "promptembedder_batch_texts_count")
    batched = _metric(metrics, "promptembedder_batch_texts_sum") - _metric(warm, "promptembedder_batch_texts_sum")
    served = np.stack(served)
    max_diff = float(np.abs(served - expected[order]).max())

    after_s, _ = _in_process(model, texts, batch_size)
    in_process_s = (before_s + after_s) / 2
    lat = np.array(latencies) * 1000
    result = {
        "prompting": args.prompting,
        "embedding": args.embedding,
        "tokens_per_text": args.tokens,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "texts_per_request": per,
        "texts": n_texts,
        "batch_size_in_process": batch_size,
        "serve_command": " ".join(command[1:]).replace(str(work), "TMP"),
        "server": {
            "seconds": round(wall, 2),
            "texts_per_s": round(n_texts / wall, 2),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
            "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
            "model_calls": int(calls),
            "mean_texts_per_call": round(batched / calls, 1) if calls else None,
        },
        "in_process": {
            "seconds_before": round(before_s, 2),
            "seconds_after": round(after_s, 2),
            "texts_per_s": round(n_texts / in_process_s, 2),
        },
        "server_over_in_process": round(in_process_s / wall, 3),
        "max_abs_diff_server_vs_encode": max_diff,
        "omp_num_threads": threads,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"{args.prompting} -> {args.embedding}, {n_texts} texts of {args.tokens} tokens, {args.clients} clients x "
        f"{args.requests} requests x {per} texts, OMP_NUM_THREADS={threads}, load average {load_before[0]:.1f}"
    )
    print("| arm | texts/s | p50 ms | p99 ms | texts per model call |\n|---|---|---|---|---|")
    s = result["server"]
    print(
        f"| server, {args.clients} concurrent clients | {s['texts_per_s']} | {s['latency_ms_p50']} | "
        f"{s['latency_ms_p99']} | {s['mean_texts_per_call']} |"
    )
    print(f"| in-process encode, batch {batch_size} | {result['in_process']['texts_per_s']} | - | - | {batch_size} |")
    print(f"server / in-process: {result['server_over_in_process']:.1%}; max |server - encode| = {max_diff:.2e}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
