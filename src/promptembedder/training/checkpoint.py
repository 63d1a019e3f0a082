"""Checkpoints that are either complete or absent: built in a hidden folder, then renamed into place."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE = "state.json"


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(
    folder: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: dict,
    scheduler: dict,
    state: dict[str, Any],
    doc_cache: dict[str, torch.Tensor] | None = None,
    keep: int = 2,
    rng: dict[str, Any] | None = None,
    best: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``folder/step-N`` atomically and keep only the newest ``keep`` checkpoints.

    ``best``: the trainable weights of the best dev evaluation so far (restore_best), so that a resumed run
    still knows them; ``state`` says which step and scores they are.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".step-{step}.tmp-"))
    try:
        for name, tensors in (("trainable", trainable), ("best", best)):
            if tensors is not None:
                save_file(
                    {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(staging / f"{name}.safetensors")
                )
        torch.save({"optimizer": optimizer, "scheduler": scheduler, "rng": rng or rng_state()}, staging / "optim.pt")
        if doc_cache:
            keys = sorted(doc_cache)
            save_file({"embeddings": torch.stack([doc_cache[k] for k in keys])}, str(staging / "doc_cache.safetensors"))
            (staging / "doc_cache_keys.json").write_text(json.dumps(keys))
        (staging / STATE).write_text(json.dumps({**state, "step": step}, indent=2))
        for f in staging.iterdir():  # on disk before the rename makes the checkpoint visible
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        target = folder / f"step-{step}"
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written ones are hidden .tmp folders and never listed)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("step-*") if (p / STATE).is_file() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def load_checkpoint(path: Path) -> dict[str, Any]:
    state = json.loads((path / STATE).read_text())
    optim = torch.load(path / "optim.pt", weights_only=False)
    doc_cache = {}
    if (path / "doc_cache.safetensors").is_file():
        keys = json.loads((path / "doc_cache_keys.json").read_text())
        doc_cache = dict(zip(keys, load_file(str(path / "doc_cache.safetensors"))["embeddings"], strict=True))
    return {
        "state": state,
        "trainable": load_file(str(path / "trainable.safetensors")),
        "optimizer": optim["optimizer"],
        "scheduler": optim["scheduler"],
        "rng": optim["rng"],
        "doc_cache": doc_cache,
        "best": load_file(str(path / "best.safetensors")) if (path / "best.safetensors").is_file() else None,
    }
