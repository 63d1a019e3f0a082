"""Where PromptEmbedder keeps what it prepares once: converted models, built data, embedding caches."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PROMPTEMBEDDER_HOME"


def home() -> Path:
    """The root of every cache; ``$PROMPTEMBEDDER_HOME`` moves it (default ``~/.cache/promptembedder``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "promptembedder").expanduser()


def models_dir() -> Path:
    return home() / "models"


def data_dir() -> Path:
    return home() / "data"


def embeddings_cache_dir() -> Path:
    return home() / "embeddings"
