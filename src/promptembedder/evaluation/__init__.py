"""Evaluation on the held-out suite with MTEB's metrics, training-free baselines, an mteb adapter, reports.

    from promptembedder.evaluation import run_eval, evaluate_task, EvalOptions
    results = run_eval(["baseline:gemma3-270m:mean", "minilm"], out="results.json")

``promptembedder eval`` is the command-line face of :func:`run_eval`.
"""

from promptembedder.evaluation.cache import EmbeddingCache
from promptembedder.evaluation.encoder import Encoder, encode_sorted
from promptembedder.evaluation.runner import load_tasks, run_eval
from promptembedder.evaluation.tasks import MAIN_METRIC, EvalOptions, TaskResult, evaluate_task

__all__ = [
    "MAIN_METRIC",
    "EmbeddingCache",
    "Encoder",
    "EvalOptions",
    "TaskResult",
    "encode_sorted",
    "evaluate_task",
    "load_tasks",
    "run_eval",
]
