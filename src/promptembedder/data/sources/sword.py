"""Two SWORD reference modules keyed to Bible verses, from Debian ``sword-comm-mhcc`` and ``sword-dict-naves``:

- Matthew Henry's Concise Commentary (module ``MHCC``, a compressed commentary read with pysword): each
  note is stored at every verse of the passage it explains, so a run of verses carrying the same note is
  that note's verse range. Notes open with a bold ``Verses 3-5`` marker; book introductions and chapter
  outline tables sit in front of the first note and are dropped.
- Nave's Topical Bible (module ``Nave``, a zLD lexicon, which pysword does not read): topic entries
  (``AARON``) whose lines (``→ Marriage of <ref osisRef="Exod.6.23">``) list the verses on each subtopic.
"""

from __future__ import annotations

import functools
import html
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources.bible import SWORD_DIR, clean_osis
from promptembedder.data.text import squash, tidy

MHCC_DIR = SWORD_DIR / "modules" / "comments" / "zcom" / "mhcc"
NAVE_BASE = SWORD_DIR / "modules" / "lexdict" / "zld" / "nave" / "nave"

_INTRO = re.compile(r'<div sID="([^"]+)" type="introduction"/>.*?<div eID="\1" type="introduction"/>', re.S)
_TABLE = re.compile(r"<table>.*?</table>", re.S)
_VERSES_MARK = re.compile(r'<hi type="bold">\s*Verses?\s+[\d\s,\-–]+</hi>')
_OSIS_REF = re.compile(r'<ref osisRef="([^"]+)">')


@dataclass(frozen=True)
class Note:
    testament: str  # "ot" or "nt"
    book: str  # OSIS name
    chapter: int
    first: int  # first verse of the range
    last: int
    text: str


@dataclass(frozen=True)
class Topic:
    topic: str  # "Aaron" (title-cased from NAVE's capitals)
    subtopic: str  # "Marriage of"; "" for a topic without subtopics
    refs: tuple[str, ...]  # single-verse OSIS references, in order ("Exod.6.23")


def clean_note(raw: str) -> str:
    """Plain commentary text: what follows the ``Verses`` marker, outline tables removed. The note body
    itself sits in an "introduction" div, so introductions are dropped only where there is no marker
    (the book introduction and chapter outline come before the first marker)."""
    m = _VERSES_MARK.search(raw)
    text = raw[m.end() :] if m else _INTRO.sub(" ", raw)
    return clean_osis(_TABLE.sub(" ", text))


def notes_from_verses(verses: list[tuple[tuple[str, str, int, int], str]]) -> list[Note]:
    """Group consecutive verses carrying the same raw note into one :class:`Note` (one chapter at most)."""
    out: list[Note] = []
    run: list[tuple[tuple[str, str, int, int], str]] = []

    def close() -> None:
        if run:
            (testament, book, chapter, first), raw = run[0]
            text = clean_note(raw)
            if text:
                out.append(Note(testament, book, chapter, first, run[-1][0][3], text))
            run.clear()

    for key, raw in verses:
        prev = run[-1] if run else None
        if prev and raw == prev[1] and key[:3] == prev[0][:3] and key[3] == prev[0][3] + 1:
            run.append((key, raw))
            continue
        close()
        if raw.strip():
            run.append((key, raw))
    close()
    return out


def read_mhcc(module_dir: Path = MHCC_DIR) -> list[tuple[tuple[str, str, int, int], str]]:
    """Every verse slot of the commentary as ((testament, book, chapter, verse), raw OSIS), in order."""
    from pysword.bible import SwordBible  # here so the rest of the package works without pysword

    bible = SwordBible(str(module_dir) + "/", "ztext", "kjv", "utf-8", "OSIS", "BOOK")
    # As for the Bible texts: pysword inflates a whole block per verse unless the last blocks are kept.
    bible._decompressed_text = functools.lru_cache(maxsize=8)(bible._decompressed_text)
    out = []
    for testament, books in bible.get_structure().get_books().items():
        for book in books:
            raw = list(bible.get_iter(books=[book.name], clean=False))
            refs = [(c + 1, v + 1) for c, n in enumerate(book.chapter_lengths) for v in range(n)]
            if len(raw) != len(refs):
                raise ValueError(f"MHCC {book.name}: {len(raw)} entries, versification says {len(refs)}")
            out.extend(((testament, book.osis_name, c, v), t) for (c, v), t in zip(refs, raw, strict=True))
    return out


def load_notes(module_dir: Path = MHCC_DIR) -> list[Note]:
    return notes_from_verses(read_mhcc(module_dir))


# ---------------------------------------------------------------- Nave's (zLD)


def read_zld(base: Path) -> list[tuple[str, str]]:
    """(key, entry text) of every entry of a compressed SWORD lexicon, in key order.

    ``.idx`` holds (offset, size) into ``.dat``, whose records are ``KEY\\r\\n`` then (block, entry);
    ``.zdx`` holds (offset, size) of zlib blocks in ``.zdt``, each block a count, a table of
    (offset, size) and the entries. All numbers are 32-bit little-endian.
    """
    idx = base.with_suffix(".idx").read_bytes()
    dat = base.with_suffix(".dat").read_bytes()
    zdx = base.with_suffix(".zdx").read_bytes()
    zdt = base.with_suffix(".zdt").read_bytes()

    @functools.lru_cache(maxsize=4)
    def block(n: int) -> bytes:
        off, size = struct.unpack_from("<II", zdx, n * 8)
        return zlib.decompress(zdt[off : off + size])

    out = []
    for i in range(len(idx) // 8):
        off, size = struct.unpack_from("<II", idx, i * 8)
        key, sep, rest = dat[off : off + size].partition(b"\r\n")
        if not sep or len(rest) < 8:
            raise ValueError(f"{base}.dat: record {i} is not 'KEY\\r\\n' + block and entry numbers")
        bn, en = struct.unpack_from("<II", rest)
        data = block(bn)
        eo, es = struct.unpack_from("<II", data, 4 + en * 8)
        out.append((key.decode("utf-8", errors="replace"), data[eo : eo + es].rstrip(b"\0").decode("utf-8")))
    return out


def _single_verses(line: str) -> tuple[str, ...]:
    # "Exod.6.16-Exod.6.20" is a range and "1Chr.24" a chapter; only single verses pair with one text.
    return tuple(r for r in _OSIS_REF.findall(line) if re.fullmatch(r"[1-4A-Za-z]+\.\d+\.\d+", r))


def parse_nave_entry(key: str, text: str) -> list[Topic]:
    """The subtopics of one entry that list at least one single verse. Subtopic text is the line with
    its references removed; ``<list>`` items are sub-subtopics, named after their parent line."""
    topic = key.strip().title()
    body = re.sub(r"</?(?:entryFree|def)[^>]*>", "", text)
    out: list[Topic] = []
    parent = ""
    for raw in re.split(r"<lb/>", body):
        items = re.split(r"<item>", raw)
        lines = [(items[0], False), *((it, True) for it in items[1:])]
        for line, is_item in lines:
            refs = _single_verses(line)
            label = re.sub(r"<ref[^>]*>.*?</ref>", " ", line, flags=re.S)
            label = tidy(html.unescape(re.sub(r"<[^>]*>", " ", label)).replace("→", " "))
            label = squash(re.sub(r"(?:\s*[,;:.]\s*)+$", "", label).strip(" ,;:"))
            if not is_item:
                parent = label
            name = f"{parent}: {label}" if is_item and parent else label
            if refs and not name.lower().startswith("see "):
                out.append(Topic(topic, name, refs))
    return out


def load_topics(base: Path = NAVE_BASE) -> list[Topic]:
    return [t for key, text in read_zld(base) for t in parse_nave_entry(key, text)]


def input_files() -> list[Path]:
    mhcc = sorted(MHCC_DIR.iterdir()) if MHCC_DIR.is_dir() else []
    return [*mhcc, *(NAVE_BASE.with_suffix(s) for s in (".idx", ".dat", ".zdx", ".zdt"))]
