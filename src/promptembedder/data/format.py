"""The on-disk data format shared by the trainer, the evaluator and the data build.

Everything is JSON Lines (UTF-8, one JSON object per line).

Training file ``train/<task>.jsonl``, one example per line::

    {"task": str, "instruction": str, "query": str, "positive": str, "negatives": [str, ...]}

and optionally ``"mined_negatives": [str, ...]`` (hard negatives mined with the frozen embedding model,
written by ``promptembedder data mine``; left out when empty).

Eval file ``eval/<name>.jsonl``: a header line, then records whose kinds depend on the task type::

    {"kind": "meta", "name": str, "task_type": str, "instruction": str, "source": str, "description": str}
    optional in the header: "withheld_instruction": str (a wording no training task uses)
    retrieval:           {"kind": "query", "id", "text"}  {"kind": "doc", "id", "text"}
                         {"kind": "qrel", "query_id", "doc_id", "score": int}
    reranking:           {"kind": "sample", "query": str, "positive": [str], "negative": [str]}
    sts:                 {"kind": "pair", "text1", "text2", "score": float}
    classification:      {"kind": "item", "text", "label", "split": "train" | "test"}
    clustering:          {"kind": "item", "text", "label"}
    pair_classification: {"kind": "pair", "text1", "text2", "label": 0 | 1}

Every loader checks every line and raises :class:`DataFormatError` with ``path:line: what is wrong``,
so a broken file is fixed at the line rather than debugged inside a training run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK_TYPES = (
    "retrieval",
    "reranking",
    "sts",
    "classification",
    "clustering",
    "pair_classification",
)

# Which record kinds each task type may contain (besides the header).
KINDS: dict[str, tuple[str, ...]] = {
    "retrieval": ("query", "doc", "qrel"),
    "reranking": ("sample",),
    "sts": ("pair",),
    "classification": ("item",),
    "clustering": ("item",),
    "pair_classification": ("pair",),
}

TRAIN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "instruction": str,
    "query": str,
    "positive": str,
    "negatives": list,
}
# Optional keys: checked for type when present.
TRAIN_OPTIONAL: dict[str, type | tuple[type, ...]] = {"mined_negatives": list}
META_OPTIONAL: dict[str, type | tuple[type, ...]] = {"withheld_instruction": str}
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "name": str,
    "task_type": str,
    "instruction": str,
    "source": str,
    "description": str,
}
# (task_type, kind) -> required fields and their types. bool is rejected separately where an int is meant.
RECORD_FIELDS: dict[tuple[str, str], dict[str, type | tuple[type, ...]]] = {
    ("retrieval", "query"): {"id": str, "text": str},
    ("retrieval", "doc"): {"id": str, "text": str},
    ("retrieval", "qrel"): {"query_id": str, "doc_id": str, "score": int},
    ("reranking", "sample"): {"query": str, "positive": list, "negative": list},
    ("sts", "pair"): {"text1": str, "text2": str, "score": (int, float)},
    ("classification", "item"): {"text": str, "label": str, "split": str},
    ("clustering", "item"): {"text": str, "label": str},
    ("pair_classification", "pair"): {"text1": str, "text2": str, "label": int},
}


class DataFormatError(ValueError):
    """A data file breaks the format; the message starts with ``path:line:``."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")


@dataclass(frozen=True)
class TrainExample:
    """One contrastive training example: embed ``instruction`` + ``query`` close to ``positive``."""

    task: str
    instruction: str
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    mined_negatives: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "instruction": self.instruction,
            "query": self.query,
            "positive": self.positive,
            "negatives": list(self.negatives),
        }
        if self.mined_negatives:  # absent rather than empty, so unmined files stay as they were
            out["mined_negatives"] = list(self.mined_negatives)
        return out


@dataclass(frozen=True)
class RerankSample:
    """A query, its right answers and the wrong ones to rank below them."""

    query: str
    positive: list[str]
    negative: list[str]


@dataclass(frozen=True)
class STSPair:
    """Two texts and a human similarity score (scale as the source gives it)."""

    text1: str
    text2: str
    score: float


@dataclass(frozen=True)
class LabeledPair:
    """Two texts and whether they mean the same (1) or not (0)."""

    text1: str
    text2: str
    label: int


@dataclass(frozen=True)
class LabeledText:
    """A text and its class; ``split`` is "train"/"test" for classification, None for clustering."""

    text: str
    label: str
    split: str | None = None


@dataclass
class EvalTask:
    """One evaluation task read from ``eval/<name>.jsonl``.

    Only the payload of ``task_type`` is filled; the others stay empty:

    - retrieval: ``queries`` (id -> text), ``corpus`` (id -> text), ``qrels`` (query id -> doc id -> score);
      every query has at least one qrel and every qrel points at a known query and doc.
    - reranking: ``samples`` (list of :class:`RerankSample`).
    - sts: ``pairs`` (list of :class:`STSPair`).
    - pair_classification: ``pairs`` (list of :class:`LabeledPair`).
    - classification: ``items`` (list of :class:`LabeledText` with split "train" or "test").
    - clustering: ``items`` (list of :class:`LabeledText` with split None).

    ``data_hash`` is the sha256 of the file bytes, so results can name the exact data they came from.
    """

    name: str
    task_type: str
    instruction: str
    source: str
    description: str
    path: Path
    data_hash: str
    withheld_instruction: str = ""  # empty when the file names none
    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    samples: list[RerankSample] = field(default_factory=list)
    pairs: list[STSPair] | list[LabeledPair] = field(default_factory=list)
    items: list[LabeledText] = field(default_factory=list)

    def __len__(self) -> int:
        if self.task_type == "retrieval":
            return len(self.queries)
        if self.task_type == "reranking":
            return len(self.samples)
        if self.task_type in ("sts", "pair_classification"):
            return len(self.pairs)
        return len(self.items)

    def split_items(self, split: str) -> list[LabeledText]:
        """The classification items of one split ("train" or "test")."""
        return [it for it in self.items if it.split == split]


# --------------------------------------------------------------------------- reading


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each line; blank lines are errors, since they hide truncation."""
    with path.open("r", encoding="utf-8") as fh:
        for no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                raise DataFormatError(path, no, "empty line (remove it: every line must be one JSON object)")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, no, f"not valid JSON: {exc.msg} at column {exc.colno}") from None
            if not isinstance(obj, dict):
                raise DataFormatError(path, no, f"expected a JSON object, got {type(obj).__name__}")
            yield no, obj


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check_fields(
    path: Path, no: int, obj: dict[str, Any], spec: dict[str, Any], what: str, optional: dict[str, Any] | None = None
) -> None:
    optional = optional or {}
    for key, typ in {**spec, **optional}.items():
        if key not in obj:
            if key in optional:
                continue
            raise DataFormatError(path, no, f"{what} is missing the key {key!r}")
        val = obj[key]
        # bool is an int subclass in Python; a true/false where a number is meant is a bug upstream.
        if isinstance(val, bool) or not isinstance(val, typ):
            raise DataFormatError(path, no, f"{what}: {key!r} must be {_type_name(typ)}, got {type(val).__name__}")
    extra = sorted(set(obj) - set(spec) - set(optional) - {"kind"})
    if extra:
        raise DataFormatError(path, no, f"{what} has unknown key(s) {', '.join(map(repr, extra))}")


def _check_str_list(path: Path, no: int, val: list[Any], key: str) -> None:
    for i, s in enumerate(val):
        if not isinstance(s, str):
            raise DataFormatError(path, no, f"{key!r}[{i}] must be str, got {type(s).__name__}")


def _check_text(path: Path, no: int, obj: dict[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        if not obj[key].strip():
            raise DataFormatError(path, no, f"{key!r} is empty")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_train_line(path: Path, no: int, obj: dict[str, Any]) -> TrainExample:
    _check_fields(path, no, obj, TRAIN_FIELDS, "training example", TRAIN_OPTIONAL)
    if "kind" in obj:
        raise DataFormatError(path, no, "training example has unknown key 'kind' (is this an eval file?)")
    _check_str_list(path, no, obj["negatives"], "negatives")
    mined = obj.get("mined_negatives", [])
    _check_str_list(path, no, mined, "mined_negatives")
    _check_text(path, no, obj, ("task", "query", "positive"))
    return TrainExample(
        task=obj["task"],
        instruction=obj["instruction"],
        query=obj["query"],
        positive=obj["positive"],
        negatives=list(obj["negatives"]),
        mined_negatives=list(mined),
    )


def load_train_file(path: str | os.PathLike[str]) -> list[TrainExample]:
    """Read and validate a ``train/<task>.jsonl`` file."""
    p = Path(path)
    out = [parse_train_line(p, no, obj) for no, obj in _read_lines(p)]
    if not out:
        raise DataFormatError(p, 1, "file is empty")
    return out


def load_eval_task(path: str | os.PathLike[str]) -> EvalTask:
    """Read and validate an ``eval/<name>.jsonl`` file into an :class:`EvalTask`."""
    p = Path(path)
    lines = _read_lines(p)
    try:
        no, head = next(lines)
    except StopIteration:
        raise DataFormatError(p, 1, "file is empty (the first line must be the meta header)") from None
    if head.get("kind") != "meta":
        raise DataFormatError(p, no, 'the first line must be the header {"kind": "meta", ...}')
    _check_fields(p, no, head, META_FIELDS, "meta header", META_OPTIONAL)
    if "withheld_instruction" in head and not head["withheld_instruction"].strip():
        raise DataFormatError(p, no, "'withheld_instruction' is empty (leave the key out if there is none)")
    ttype = head["task_type"]
    if ttype not in TASK_TYPES:
        raise DataFormatError(p, no, f"unknown task_type {ttype!r}; expected one of {', '.join(TASK_TYPES)}")
    task = EvalTask(
        name=head["name"],
        task_type=ttype,
        instruction=head["instruction"],
        source=head["source"],
        description=head["description"],
        path=p,
        data_hash=sha256_file(p),
        withheld_instruction=head.get("withheld_instruction", ""),
    )
    qrel_lines: list[tuple[int, str, str, int]] = []
    for no, obj in lines:
        kind = obj.get("kind")
        if kind not in KINDS[ttype]:
            raise DataFormatError(
                p, no, f"kind {kind!r} does not belong in a {ttype} task; expected {', '.join(KINDS[ttype])}"
            )
        _check_fields(p, no, obj, RECORD_FIELDS[(ttype, kind)], f"{kind} record")
        _add_record(task, p, no, kind, obj, qrel_lines)
    _finish(task, p, qrel_lines)
    return task


def _add_record(
    task: EvalTask,
    p: Path,
    no: int,
    kind: str,
    obj: dict[str, Any],
    qrel_lines: list[tuple[int, str, str, int]],
) -> None:
    ttype = task.task_type
    if ttype == "retrieval":
        if kind == "qrel":
            qrel_lines.append((no, obj["query_id"], obj["doc_id"], obj["score"]))
            return
        _check_text(p, no, obj, ("id", "text"))
        table = task.queries if kind == "query" else task.corpus
        if obj["id"] in table:
            raise DataFormatError(p, no, f"duplicate {kind} id {obj['id']!r}")
        table[obj["id"]] = obj["text"]
    elif ttype == "reranking":
        for key in ("positive", "negative"):
            _check_str_list(p, no, obj[key], key)
        _check_text(p, no, obj, ("query",))
        if not obj["positive"]:
            raise DataFormatError(p, no, "'positive' is empty: a sample needs at least one right answer")
        if not obj["negative"]:
            raise DataFormatError(p, no, "'negative' is empty: nothing to rank the positives against")
        task.samples.append(RerankSample(obj["query"], list(obj["positive"]), list(obj["negative"])))
    elif ttype == "sts":
        _check_text(p, no, obj, ("text1", "text2"))
        task.pairs.append(STSPair(obj["text1"], obj["text2"], float(obj["score"])))  # type: ignore[arg-type]
    elif ttype == "pair_classification":
        _check_text(p, no, obj, ("text1", "text2"))
        if obj["label"] not in (0, 1):
            raise DataFormatError(p, no, f"'label' must be 0 or 1, got {obj['label']!r}")
        task.pairs.append(LabeledPair(obj["text1"], obj["text2"], obj["label"]))  # type: ignore[arg-type]
    else:  # classification, clustering
        _check_text(p, no, obj, ("text", "label"))
        split = obj.get("split")
        if ttype == "classification" and split not in ("train", "test"):
            raise DataFormatError(p, no, f"'split' must be 'train' or 'test', got {split!r}")
        task.items.append(LabeledText(obj["text"], obj["label"], split))


def _finish(task: EvalTask, p: Path, qrel_lines: list[tuple[int, str, str, int]]) -> None:
    """Whole-file checks: qrels point at known ids, every query is judged, nothing is empty."""
    for no, qid, did, score in qrel_lines:
        if qid not in task.queries:
            raise DataFormatError(p, no, f"qrel names unknown query id {qid!r} (add its query record)")
        if did not in task.corpus:
            raise DataFormatError(p, no, f"qrel names unknown doc id {did!r} (add its doc record)")
        task.qrels.setdefault(qid, {})[did] = score
    if task.task_type == "retrieval":
        unjudged = sorted(set(task.queries) - set(task.qrels))
        if unjudged:
            raise DataFormatError(p, 1, f"query id {unjudged[0]!r} has no qrel ({len(unjudged)} such)")
    if len(task) == 0:
        raise DataFormatError(p, 1, f"the {task.task_type} task has no records after the header")
    if task.task_type == "classification":
        for split in ("train", "test"):
            if not task.split_items(split):
                raise DataFormatError(p, 1, f"classification task has no {split!r} items")


def list_eval_tasks(directory: str | os.PathLike[str]) -> list[Path]:
    """The eval files of a built folder (``DIR/eval/*.jsonl`` or ``DIR/*.jsonl``), sorted by name."""
    d = Path(directory)
    if (d / "eval").is_dir():
        d = d / "eval"
    return sorted(d.glob("*.jsonl"))


def list_train_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The training files of a built folder (``DIR/train/*.jsonl`` or ``DIR/*.jsonl``), sorted by name."""
    d = Path(directory)
    if (d / "train").is_dir():
        d = d / "train"
    return sorted(d.glob("*.jsonl"))


# --------------------------------------------------------------------------- writing


def dumps(obj: dict[str, Any]) -> str:
    """The one canonical serialisation, so equal data gives byte-equal files."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def write_jsonl_atomic(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write records to ``path`` through a temp file and ``os.replace``; return the number written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for rec in records:
                fh.write(dumps(rec))
                fh.write("\n")
                n += 1
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def eval_header(
    name: str, task_type: str, instruction: str, source: str, description: str, withheld_instruction: str = ""
) -> dict[str, str]:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}")
    head = {
        "kind": "meta",
        "name": name,
        "task_type": task_type,
        "instruction": instruction,
        "source": source,
        "description": description,
    }
    if withheld_instruction:
        head["withheld_instruction"] = withheld_instruction
    return head
