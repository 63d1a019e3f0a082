"""Serving: task bundles and an OpenAI-compatible embeddings server with batching."""

from promptembedder.serving.bundle import (
    BundleError,
    Servable,
    export_bundle,
    load_bundle,
    load_servable,
    read_tasks,
    servable_model,
)
from promptembedder.serving.config import ServeConfig

__all__ = [
    "BundleError",
    "ServeConfig",
    "Servable",
    "create_app",
    "export_bundle",
    "load_bundle",
    "load_servable",
    "read_tasks",
    "servable_model",
]


def __getattr__(name: str):
    if name == "create_app":  # FastAPI loads only when a server is built
        from promptembedder.serving.app import create_app

        return create_app
    raise AttributeError(name)
