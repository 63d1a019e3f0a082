"""Tiny random-initialised models saved to a temp folder, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn

from promptembedder import PromptEmbedder
from promptembedder.serving import ServeConfig, create_app, export_bundle, load_servable

from tiny import save_tiny_pair

TASKS = {
    "animals": "find the sentence about the same animal",
    "music": "find the sentence about the same instrument",
}
TEXTS = ["the red cat runs", "a big dog eats bread", "the old piano", "happy music plays", "water"]


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """A saved tiny PromptEmbedder (gemma-style backbone: left padding, BOS) and a bundle of TASKS from it."""
    folder = tmp_path_factory.mktemp("serving")
    prompting, embedding = save_tiny_pair(folder, kind="gemma")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", max_length=64)
    model_dir = model.save_pretrained(folder / "model")
    bundle = export_bundle(model, TASKS, folder / "bundle", source=str(model_dir))
    return {"model": model_dir, "bundle": bundle, "folder": folder, "tasks": dict(TASKS), "texts": list(TEXTS)}


@pytest.fixture(scope="session")
def reference(saved):
    """The in-process model the server's vectors are compared with."""
    return PromptEmbedder.from_pretrained(saved["model"], device="cpu")


@contextmanager
def running(app, timeout: float = 30.0):
    """Serve ``app`` with uvicorn on 127.0.0.1 at a port the OS picks; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@pytest.fixture(scope="session")
def serve():
    """``with serve(app) as url``: a real uvicorn server on loopback for the block."""
    return running


@pytest.fixture(scope="module")
def bundle_server(saved):
    """The bundle served without its Prompting LLM, small limits so that they are cheap to hit."""
    config = ServeConfig(max_texts_per_request=64, max_body_bytes=64 * 1024, max_tokens_per_text=40)
    with running(create_app(load_servable(saved["bundle"], device="cpu"), config)) as url:
        yield url


@pytest.fixture(scope="module")
def model_server(saved):
    """The saved model itself (Prompting LLM included), with the same tasks named."""
    with running(create_app(load_servable(saved["model"], tasks=TASKS, device="cpu"))) as url:
        yield url
