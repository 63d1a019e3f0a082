"""The small dictd dictionaries from Debian: ``dict-devil`` (Ambrose Bierce, *The Devil's Dictionary*, 1911)
and ``dict-elements`` (Jay F. Kominek's chemical elements database, 2000), both under ``/usr/share/dictd``.

Both use the dictd layout GCIDE uses (an index of ``word<TAB>base64 offset<TAB>base64 length`` into a
gzip-compatible ``.dict.dz``); only the bodies differ:

- devil: ``ADMIRATION, n.  Our polite recognition ...`` then, after a blank line, indented verse
  quotations closed by an attribution far to the right;
- elements: ``fermium`` / ``Symbol: Fm`` / ``Atomic number: 100`` / ``Atomic weight: (253)`` then prose.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources.gcide import DICTD_DIR, dictd_bodies
from promptembedder.data.text import squash

# "ADMIRATION, n." / "ABRUPT, adj." / "ACCORD, n.". The word is printed in capitals, then the part of speech.
_DEVIL_HEAD = re.compile(r"^([A-Z][A-Z' .\-]*?),\s*((?:[a-z]+\.\s?)+)\s+(.*)$", re.S)
# Bierce's italics are _underscored_; they carry no meaning for the embedding.
_UNDERSCORE = re.compile(r"_([^_]+)_")
_BRACES = re.compile(r"[{}]")


@dataclass(frozen=True)
class DevilEntry:
    word: str  # the printed headword, lower-cased ("admiration")
    pos: str  # "n.", "v.t.", ...
    definition: str  # the prose of the entry, quotations left out


@dataclass(frozen=True)
class Element:
    name: str  # "fermium"
    symbol: str  # "Fm"
    number: int
    description: str  # the prose after the atomic weight line


def read_bodies(index_lines: Iterable[str], dict_bytes: bytes, name: str) -> list[tuple[tuple[str, ...], str]]:
    """Every unique body with the index words that point at it, in body order; dictd's own ``00database``
    entries are left out."""
    return [
        (tuple(sorted(set(words))), raw.decode("utf-8", errors="replace"))
        for words, raw in dictd_bodies(index_lines, dict_bytes, name, skip=("00",))
    ]


def parse_devil_body(body: str) -> DevilEntry | None:
    """The first paragraph block of an entry, minus quotations (indented blocks) and italics marks.
    Returns None for a body that does not open with ``HEADWORD, pos.`` (a few cross-references).
    The word is the printed headword, not the index word: the index files LAUREATE under "laurel" too."""
    paragraphs = re.split(r"\n\s*\n", body.strip("\n"))
    m = _DEVIL_HEAD.match(paragraphs[0].strip())
    if not m:
        return None
    prose = [m.group(3)]
    for p in paragraphs[1:]:
        if p.startswith((" ", "\t")):
            continue  # a verse quotation with its attribution
        prose.append(p)
    text = squash(_BRACES.sub("", _UNDERSCORE.sub(r"\1", " ".join(prose))))
    return DevilEntry(squash(m.group(1)).lower(), squash(m.group(2)), text) if len(text.split()) >= 2 else None


def parse_element_body(body: str) -> Element | None:
    lines = [line.strip() for line in body.strip().split("\n")]
    fields: dict[str, str] = {}
    i = 1
    while (
        i < len(lines) and ":" in lines[i] and lines[i].split(":", 1)[0] in ("Symbol", "Atomic number", "Atomic weight")
    ):
        key, value = lines[i].split(":", 1)
        fields[key] = value.strip()
        i += 1
    text = squash(_BRACES.sub("", " ".join(lines[i:])))
    if not lines[0] or "Symbol" not in fields or "Atomic number" not in fields or not text:
        return None
    try:
        number = int(fields["Atomic number"])
    except ValueError:
        return None
    return Element(lines[0], fields["Symbol"], number, text)


def _load(directory: Path, name: str) -> list[tuple[tuple[str, ...], str]]:
    index = directory / f"{name}.index"
    with gzip.open(directory / f"{name}.dict.dz") as fh:
        data = fh.read()
    with index.open(encoding="utf-8") as fh:
        return read_bodies(fh, data, str(index))


def read_devil(bodies: list[tuple[tuple[str, ...], str]]) -> list[DevilEntry]:
    out = []
    for _words, body in bodies:
        entry = parse_devil_body(body)
        if entry is not None:
            out.append(entry)
    return out


def read_elements(bodies: list[tuple[tuple[str, ...], str]]) -> list[Element]:
    seen: set[int] = set()
    out = []
    for _words, body in bodies:
        el = parse_element_body(body)
        if el is not None and el.number not in seen:  # the symbol and the name index the same body
            seen.add(el.number)
            out.append(el)
    return sorted(out, key=lambda e: e.number)


def load_devil(directory: Path = DICTD_DIR) -> list[DevilEntry]:
    return read_devil(_load(directory, "devil"))


def load_elements(directory: Path = DICTD_DIR) -> list[Element]:
    return read_elements(_load(directory, "elements"))


def input_files(name: str, directory: Path = DICTD_DIR) -> list[Path]:
    return [directory / f"{name}.index", directory / f"{name}.dict.dz"]
