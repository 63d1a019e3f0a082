"""Real, human-made training and evaluation data built offline from packaged corpora.

The format lives in :mod:`promptembedder.data.format`; ``promptembedder data build`` writes a full
build to :func:`default_data_dir`; a small sample made by the same code ships in :func:`sample_dir`.
"""

from __future__ import annotations

from pathlib import Path

from promptembedder.data.format import (
    DataFormatError,
    EvalTask,
    LabeledPair,
    LabeledText,
    RerankSample,
    STSPair,
    TrainExample,
    list_eval_tasks,
    list_train_files,
    load_eval_task,
    load_train_file,
)

__all__ = [
    "DataFormatError",
    "EvalTask",
    "LabeledPair",
    "LabeledText",
    "RerankSample",
    "STSPair",
    "TrainExample",
    "default_data_dir",
    "list_eval_tasks",
    "list_train_files",
    "load_eval_task",
    "load_train_file",
    "sample_dir",
]


def sample_dir() -> Path:
    """The small in-repo sample (``train/``, ``eval/``, ``manifest.json``) for tests and the quick demo."""
    return Path(__file__).resolve().parent / "sample"


def default_data_dir() -> Path:
    """Where ``promptembedder data build`` writes by default (``$PROMPTEMBEDDER_HOME/data``)."""
    from promptembedder.paths import data_dir

    return data_dir()
