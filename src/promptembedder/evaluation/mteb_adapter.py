"""Let the ``mteb`` package (2.x) evaluate a PromptEmbedder, and let it read our eval files.

:class:`MTEBEncoder` implements mteb's ``EncoderProtocol``: mteb hands it a DataLoader of text batches,
the task's metadata and a prompt type. The instruction is the task's prompt (``task_metadata.prompt``,
or an override by task name); ``prompt_type=document`` goes through ``encode_documents`` (prompted or
plain as the model's config says), ``query`` and ``None`` (symmetric tasks) through ``encode_queries``::

    import mteb
    from promptembedder.evaluation.mteb_adapter import MTEBEncoder
    results = mteb.evaluate(MTEBEncoder(encoder), mteb.get_tasks(tasks=["STS12"]), cache=None)

:func:`to_mteb_task` wraps one of our ``eval/<name>.jsonl`` tasks as an mteb task that loads from the
file (no download), so mteb's own evaluators can score the held-out suite; the tests use it to check that
mteb's numbers and :mod:`.tasks`'s agree. Needs ``pip install mteb`` (an optional extra: it pulls in
``datasets``, ``pandas``, ``pyarrow``, ``polars``, ``pytrec-eval`` and ``sentence-transformers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from promptembedder.config import PromptEmbedderConfig
from promptembedder.data import EvalTask
from promptembedder.evaluation.encoder import Encoder, encode_sorted


class MTEBEncoder(AbsEncoder):
    """An :class:`~promptembedder.evaluation.encoder.Encoder` seen through mteb's encoder protocol.

    ``instructions`` maps mteb task names to instructions and wins over the task's own prompt; a task
    with neither gets mteb's default prompt for its task type (e.g. "Retrieve text based on user query.").
    """

    def __init__(
        self,
        encoder: Encoder,
        instructions: Mapping[str, str] | None = None,
        batch_size: int = 32,
        training_datasets: set[str] | None = None,
    ) -> None:
        self.model = encoder
        self.prompts_dict = dict(instructions or {})
        self.batch_size = batch_size
        self.mteb_model_meta = model_meta(encoder, training_datasets=training_datasets)

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        instruction = self.get_instruction(task_metadata, prompt_type) or None
        side = "document" if prompt_type == PromptType.document else "query"
        return encode_sorted(
            self.model,
            texts,
            side=side,
            instruction=instruction,
            batch_size=kwargs.get("batch_size", self.batch_size),
            progress=kwargs.get("show_progress_bar", None),
        )


def model_meta(encoder: Encoder, *, training_datasets: set[str] | None = None) -> ModelMeta:
    """mteb's ModelMeta, filled from the model behind ``encoder`` where it has one (a PromptEmbedder, a baseline).

    Parameters and memory count every weight a forward pass reads (both LLMs and W); ``max_tokens`` is the
    Embedding LLM's limit (soft prompt included); the licence is the parts' common one, else "multiple".
    """
    model = getattr(encoder, "model", encoder)  # evaluation wrappers keep the model as .model
    fields: dict[str, Any] = {
        "name": f"promptembedder/{_slug(encoder.name)}",
        "revision": encoder.fingerprint(),
        "similarity_fn_name": ScoringFunction.COSINE,
        "use_instructions": True,
        "framework": ["PyTorch", "Sentence Transformers", "safetensors"],
        "open_weights": True,
        "modalities": ["text"],
    }
    if training_datasets is not None:
        fields["training_datasets"] = set(training_datasets)
    if isinstance(model, torch.nn.Module):
        params = list({id(p): p for p in model.parameters()}.values())  # tied weights once
        fields["n_parameters"] = sum(p.numel() for p in params)
        fields["memory_usage_mb"] = round(sum(p.numel() * p.element_size() for p in params) / 2**20, 1)
    if callable(getattr(model, "get_sentence_embedding_dimension", None)):
        fields["embed_dim"] = int(model.get_sentence_embedding_dimension())
    embedding = getattr(model, "embedding", None)
    if embedding is not None and getattr(embedding, "max_length", None):
        fields["max_tokens"] = float(embedding.max_length)
    config = getattr(model, "config", None)
    if isinstance(config, PromptEmbedderConfig):
        from promptembedder.modelcard import UNKNOWN_LICENCE, hub_licence, part_licences

        licences = list(part_licences(config).values())
        if UNKNOWN_LICENCE not in licences:  # else left "not specified": no claim about a model we do not know
            licence, _ = hub_licence(licences)
            fields["license"] = "multiple" if licence == "other" else licence
    return ModelMeta.create_empty(overwrites=fields)


def run_mteb_tasks(
    encoder: Encoder,
    names: Sequence[str],
    *,
    batch_size: int = 32,
    instructions: Mapping[str, str] | None = None,
    training_datasets: set[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """mteb's own task classes by name, scored by mteb's evaluators on data from the local HF cache.

    Returns, per task, its type, main-score name, main score and every score mteb reported. A task whose data
    is not in the cache (and the hub unreachable) raises :class:`MTEBDataError` naming the task.
    """
    import mteb

    tasks = []
    for name in names:
        try:
            tasks.extend(mteb.get_tasks(tasks=[name]))
        except KeyError as err:
            raise MTEBDataError(f"unknown mteb task {name!r} ({err.args[0] if err.args else err})") from None
    adapter = MTEBEncoder(
        encoder, instructions=instructions, batch_size=batch_size, training_datasets=training_datasets
    )
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        try:
            task.load_data()
        except (ConnectionError, FileNotFoundError, OSError, ValueError) as err:
            raise MTEBDataError(
                f"mteb task {task.metadata.name}: its data ({task.metadata.dataset['path']}) is not in the local "
                f"Hugging Face cache and the hub cannot be reached ({type(err).__name__}: {err}); load it once "
                "where the hub is reachable (mteb.get_task(NAME).load_data()), or point HF_HOME at a cache that has it"
            ) from None
        result = mteb.evaluate(
            adapter, task, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": batch_size}
        )
        (task_result,) = result.task_results
        out[task.metadata.name] = {
            "task_type": task.metadata.type,
            "metric": task.metadata.main_score,
            "main_score": float(task_result.get_score()),
            "scores": task_result.scores,
        }
    return out


class MTEBDataError(RuntimeError):
    """An mteb task that cannot run here: unknown, or its data neither cached nor downloadable."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "model"


# --------------------------------------------------------------------------- our files as mteb tasks

_TYPES = {
    "retrieval": ("Retrieval", "ndcg_at_10"),
    "reranking": ("Reranking", "map_at_1000"),
    "sts": ("STS", "cosine_spearman"),
    "classification": ("Classification", "accuracy"),
    "clustering": ("Clustering", "v_measure"),
    "pair_classification": ("PairClassification", "max_ap"),
}


def task_metadata(task: EvalTask) -> TaskMetadata:
    """mteb metadata for one of our tasks; the instruction becomes the task prompt."""
    mteb_type, main_score = _TYPES[task.task_type]
    return TaskMetadata(
        name=task.name,
        description=task.description or task.name,
        prompt=task.instruction or None,
        type=mteb_type,
        main_score=main_score,
        dataset={"path": f"local/{task.name}", "revision": task.data_hash[:12]},  # never fetched: load_data fills it
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        date=("2000-01-01", "2000-01-01"),
        domains=[],
        task_subtypes=[],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )


class _LocalTask:
    """Mixin: data from our file. ``metadata`` and ``eval_task`` are set on a per-task subclass (mteb drops
    instance-level metadata when it unloads a task, and finds prompts by walking task classes)."""

    eval_task: EvalTask

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = _dataset(self.eval_task)
        self.data_loaded = True


class LocalRetrievalTask(_LocalTask, AbsTaskRetrieval):
    k_values = (1, 3, 5, 10, 20, 100)  # our metrics stop at 100; 1000 would only cost time


class LocalRerankingTask(_LocalTask, AbsTaskRetrieval):
    pass


class LocalSTSTask(_LocalTask, AbsTaskSTS):
    pass


class LocalClassificationTask(_LocalTask, AbsTaskClassification):
    pass


class LocalClusteringTask(_LocalTask, AbsTaskClusteringLegacy):
    pass


class LocalPairClassificationTask(_LocalTask, AbsTaskPairClassification):
    pass


_CLASSES: dict[str, type[_LocalTask]] = {
    "retrieval": LocalRetrievalTask,
    "reranking": LocalRerankingTask,
    "sts": LocalSTSTask,
    "classification": LocalClassificationTask,
    "clustering": LocalClusteringTask,
    "pair_classification": LocalPairClassificationTask,
}


def to_mteb_task(task: EvalTask, seed: int = 42) -> Any:
    """An mteb task over ``task``'s data. Clustering uses mteb's legacy evaluator (k-means over the whole
    set, one seed), the definition :func:`metrics.clustering_scores` averages over seeds."""
    attrs: dict[str, Any] = {"metadata": task_metadata(task), "eval_task": task}
    if task.task_type == "sts":
        scores = [p.score for p in task.pairs]
        # mteb rescales gold scores to [0, 1] with these; Spearman does not care, but keep them true.
        attrs.update(min_score=min(scores), max_score=max(scores))
    base = _CLASSES[task.task_type]
    cls = type(f"{base.__name__}_{_slug(task.name)}", (base,), attrs)
    return cls(seed=seed)


def _dataset(task: EvalTask) -> Any:
    if task.task_type == "retrieval":
        split = RetrievalSplitData(
            queries=Dataset.from_dict({"id": list(task.queries), "text": list(task.queries.values())}),
            corpus=Dataset.from_dict({"id": list(task.corpus), "text": list(task.corpus.values())}),
            relevant_docs={q: dict(docs) for q, docs in task.qrels.items()},
            top_ranked=None,
        )
        return {"default": {"test": split}}
    if task.task_type == "reranking":
        return {"default": {"test": _reranking_split(task)}}
    if task.task_type in ("sts", "pair_classification"):
        target = "score" if task.task_type == "sts" else "labels"
        values = [p.score if task.task_type == "sts" else p.label for p in task.pairs]
        cols = {"sentence1": [p.text1 for p in task.pairs], "sentence2": [p.text2 for p in task.pairs], target: values}
        return DatasetDict({"test": Dataset.from_dict(cols)})
    if task.task_type == "classification":
        names = sorted({it.label for it in task.items})  # int labels; sorted, as scikit-learn orders classes
        splits = {}
        for split in ("train", "test"):
            items = task.split_items(split)
            splits[split] = Dataset.from_dict(
                {"text": [it.text for it in items], "label": [names.index(it.label) for it in items]}
            )
        return DatasetDict(splits)
    # clustering: the legacy format holds one set per row
    row = {"sentences": [[it.text for it in task.items]], "labels": [[it.label for it in task.items]]}
    return DatasetDict({"test": Dataset.from_dict(row)})


def _reranking_split(task: EvalTask) -> RetrievalSplitData:
    # Candidate ids keep each sample's positives before its negatives in id order, as .tasks names them.
    queries, corpus, qrels, top = {"id": [], "text": []}, {"id": [], "text": []}, {}, {}
    for i, sample in enumerate(task.samples):
        qid = f"q{i:06d}"
        queries["id"].append(qid)
        queries["text"].append(sample.query)
        cands = [(text, 1) for text in sample.positive] + [(text, 0) for text in sample.negative]
        ids = [f"{qid}-{j:06d}" for j in range(len(cands))]
        corpus["id"].extend(ids)
        corpus["text"].extend(text for text, _ in cands)
        qrels[qid] = {d: grade for d, (_, grade) in zip(ids, cands, strict=True)}
        top[qid] = ids
    return RetrievalSplitData(
        queries=Dataset.from_dict(queries),
        corpus=Dataset.from_dict(corpus),
        relevant_docs=qrels,
        top_ranked=top,
    )
