"""``promptembedder export`` and ``serve`` as a user runs them; SIGTERM finishes the requests in flight."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
from typer.testing import CliRunner

from promptembedder.cli import app
from promptembedder.serving.bundle import BUNDLE_NAME


def test_export_writes_a_bundle_and_bad_input_exits_2_with_one_message(saved, tmp_path):
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text("animals: find the sentence about the same animal\n")
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", "--model", str(saved["model"]), "--tasks", str(tasks), "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / BUNDLE_NAME).is_file() and "1 tasks (animals)" in result.output
    tasks.write_text("- not a mapping\n")
    bad = runner.invoke(
        app, ["export", "--model", str(saved["model"]), "--tasks", str(tasks), "--out", str(tmp_path / "c")]
    )
    assert bad.exit_code == 2 and "must be a non-empty mapping" in bad.output and "Traceback" not in bad.output
    nowhere = runner.invoke(
        app,
        [
            "export",
            "--model",
            str(tmp_path),
            "--tasks",
            str(tmp_path / "b" / BUNDLE_NAME),
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert nowhere.exit_code == 2 and "error:" in nowhere.output


def test_serve_refuses_what_it_cannot_serve_with_exit_2(saved, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "neither a task bundle" in result.output
    result = runner.invoke(app, ["serve", str(saved["bundle"]), "--max-tokens-per-text", "1000"])
    assert result.exit_code == 2 and "more than this model reads per text" in result.output
    result = runner.invoke(app, ["serve", str(saved["bundle"]), "--max-batch-tokens", "0"])
    assert result.exit_code == 2 and "max_batch_tokens must be a positive integer" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_finishes_the_requests_in_flight_then_stops(saved, reference):
    port = _free_port()
    command = [sys.executable, "-m", "promptembedder", "serve", str(saved["bundle"]), "--port", str(port)]
    # A small token budget: the big request below takes many model calls, so it is still running at SIGTERM.
    command += ["--max-batch-tokens", "16", "--log-level", "warning"]
    server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        texts = [saved["texts"][i % len(saved["texts"])] for i in range(600)]
        answers = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/v1/embeddings", json={"input": texts, "model": "music"}, timeout=300)
            )
        )
        request.start()
        deadline = time.monotonic() + 60
        while "promptembedder_requests_in_flight 2.0" not in httpx.get(f"{url}/metrics", timeout=5).text:
            assert time.monotonic() < deadline and request.is_alive(), "the big request was never seen in flight"
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)
        request.join(300)
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit status says SIGTERM.
        assert server.wait(120) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
    assert answers and answers[0].status_code == 200, answers
    got = np.array([d["embedding"] for d in answers[0].json()["data"]], dtype=np.float32)
    expected = reference.encode(saved["texts"], instruction=saved["tasks"]["music"])
    np.testing.assert_allclose(got, expected[[i % len(saved["texts"]) for i in range(600)]], atol=1e-5)


def test_a_bad_log_level_is_refused_before_anything_loads(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "no-such-bundle"), "--log-level", "loud"])
    assert result.exit_code == 2 and "--log-level 'loud'" in result.output and "debug" in result.output
