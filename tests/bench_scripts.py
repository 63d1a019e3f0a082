"""Load a script of bench/ (a folder of scripts, not a package) as a module, for its tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench_script(relative: str) -> ModuleType:
    """``load_bench_script("transfer/run.py")``: the script's functions, without running its ``main``."""
    path = BENCH / relative
    spec = importlib.util.spec_from_file_location("bench_" + relative.replace("/", "_").removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
