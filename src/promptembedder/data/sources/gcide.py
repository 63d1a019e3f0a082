"""GCIDE from Debian ``dict-gcide``: the dictd files ``gcide.index`` and ``gcide.dict.dz``.

An index line is ``headword<TAB>offset<TAB>length`` with offset and length in dictd's base64 digits; the
body at that place in the (gzip-compatible) ``.dict.dz`` is the entry as plain text: a header line
(``Word \\Pro*nun"ci*a*tion\\, n. [etymology]``), then senses, quotations, ``Syn:``/``Note:`` blocks and
phrase sub-entries, each closed by a source tag line such as ``[1913 Webster]``. Pronunciation and
accented letters use bracket codes (``['e]`` for é).
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import squash

DICTD_DIR = Path("/usr/share/dictd")
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


class GcideParseError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    """One dictionary body: the headword it is printed under, every index word pointing at it, its senses."""

    headword: str
    index_words: tuple[str, ...]
    definitions: tuple[str, ...]
    source_tags: tuple[str, ...]  # e.g. "1913 Webster", "WordNet 1.5", "PJC"

    @property
    def from_wordnet(self) -> bool:
        """GCIDE copied some glosses from WordNet; they would leak WordNet eval answers into training."""
        return any("WordNet" in t for t in self.source_tags)


def b64_number(text: str) -> int:
    """dictd's base64 numbers: most significant digit first, alphabet A-Z a-z 0-9 + /."""
    value = 0
    for ch in text:
        if ch not in _B64:
            raise GcideParseError(f"bad base64 digit {ch!r} in {text!r}")
        value = value * 64 + _B64[ch]
    return value


def parse_index_line(line: str) -> tuple[str, int, int]:
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 3 or not parts[0]:
        raise GcideParseError("expected 'word<TAB>offset<TAB>length'")
    return parts[0], b64_number(parts[1]), b64_number(parts[2])


# ---------------------------------------------------------------- bracket character codes

_MARKS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303", ",": "\u0327",
          "=": "\u0304", ".": "\u0323", "-": "\u0306", "*": "\u0307"}  # fmt: skip
_NAMED = {"ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "eth": "ð", "thorn": "þ", "yogh": "ȝ", "deg": "°",
          "sect": "§", "root": "√", "pound": "£", "cent": "¢", "frac12": "½", "frac14": "¼", "frac34": "¾",
          "frac13": "⅓", "frac23": "⅔", "frac18": "⅛", "times": "×", "divide": "÷", "imac": "ī",
          "ng": "ng", "th": "th", "add": "", "prime": "′", "dprime": "″", "mdash": "—", "ndash": "–",
          "sharp": "♯", "flat": "♭", "natural": "♮", "para": "¶", "cuberoot": "∛", "aum": "a",
          "asl": "a", "udd": "u", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵"}  # fmt: skip
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
          "tau upsilon phi chi psi omega").split()  # fmt: skip
_CODE = re.compile(r"\[([^\[\]\s]{1,8})\]")


def _decode_code(m: re.Match[str]) -> str:
    code = m.group(1)
    if code in _NAMED:
        return _NAMED[code]
    if code.lower() in _GREEK:
        case = "CAPITAL" if code[0].isupper() else "SMALL"
        name = "LAMDA" if code.lower() == "lambda" else code.upper()  # Unicode spells it without b
        return unicodedata.lookup(f"GREEK {case} LETTER {name}")
    if len(code) == 2 and code[0] in _MARKS and code[1].isalpha():
        return unicodedata.normalize("NFC", code[1] + _MARKS[code[0]])
    if len(code) == 2 and code[1] == "^" and code[0].isalpha():
        # [^o] is a circumflex but [o^] a breve: the side of the mark decides.
        return unicodedata.normalize("NFC", code[0] + "\u0306")
    return m.group(0)  # not a character code (e.g. [Obs.] or [R.]): leave for the tag clean-up


def decode_codes(text: str) -> str:
    """Turn GCIDE's bracket character codes into Unicode (``['e]`` -> é, ``[ae]`` -> æ)."""
    return _CODE.sub(_decode_code, text)


# ---------------------------------------------------------------- bodies

_SOURCE_TAG = re.compile(r"^\s*\[([^\]]*(?:Webster|WordNet|PJC|Century|RDH|Suppl)[^\]]*)\]")
_NUMBERED = re.compile(r"^\s{0,6}(\d+)\.\s")
_SUBSENSE = re.compile(r"^\s{0,8}\(([a-z])\)\s")
_SKIP_BLOCK = ("Syn:", "Syn.", "Usage:", "Note:", "{", "--")
_TAG = re.compile(r"\[[^\[\]]*\]")
# "--Shak." cites a source and ends the sense; " -- said of ..." with a space is the dictionary's dash.
_CITATION = re.compile(r"\s--(?=\S).*$")
# "... -- A`ble-mind"ed*ness, n." appends a derived word, marked by its syllable and stress marks.
_RUN_ON = re.compile(r"\s--\s+\S*[*\"`]\S*.*$")
# Pointers to another entry or an inflection ("See Banc.", "imp. of Do.") define nothing by themselves;
# "Same as X." stays, since it names a synonym.
_CROSS_REF = re.compile(r"^(?:See|imp\.|p\. ?p\.|p\. pr\.|pl\.|plural of|obs\. form|alt\. of|variant)", re.I)


_PRONUNCIATION = re.compile(r"^\s*\([^)]*[\"*`][^)]*\)")


def _header_length(lines: list[str]) -> int:
    """Lines taken by the header: the first; any that start at column 0 (more headwords) or with a
    (pro*nun"ci*a*tion); and any while its [etymology] bracket is still open."""
    depth = 0
    for i, line in enumerate(lines):
        if i and not line.strip():
            return i
        clean = _CODE.sub("", line)
        depth = max(0, depth + clean.count("[") - clean.count("]"))
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        more = nxt[:1] not in ("", " ") or _PRONUNCIATION.match(nxt) is not None
        if depth == 0 and not more:
            return i + 1
    return len(lines)


# Pronunciation and part-of-speech residue that a header laid out unusually leaves at the start of a
# sense: '(-sĭz). The dignity...', 'ĕ"jĭ*lŏps), n.', 'n.; pl. ...'.
_LEADING_RESIDUE = re.compile(
    r"^(?:\((?:-|[^)]*[\"*`])[^)]*\)[.,]?\s*|[^\s()]*[\"*`][^\s()]*\)[.,]?\s*"
    r"|(?:n|a|v|adv|prep|conj|interj|pron|t|i)\.[,;]?\s+)+"
)


def _clean_definition(text: str) -> str:
    text = decode_codes(squash(text))
    text = _RUN_ON.sub("", _CITATION.sub("", text))
    text = _TAG.sub("", text.replace("{", "").replace("}", ""))
    return _LEADING_RESIDUE.sub("", squash(text)).strip(" ;,")


def _senses(block: list[str]) -> list[str]:
    """Split a definition block into senses: numbered ones, and (a)/(b) sub-senses under their lead."""
    chunks: list[list[str]] = []
    for line in block:
        if _NUMBERED.match(line) or not chunks:
            chunks.append([_NUMBERED.sub("", line, count=1)])
        else:
            chunks[-1].append(line)
    out: list[str] = []
    for chunk in chunks:
        subs: list[list[str]] = [[]]
        for line in chunk:
            if _SUBSENSE.match(line):
                subs.append([_SUBSENSE.sub("", line, count=1)])
            else:
                subs[-1].append(line)
        lead = " ".join(subs[0])
        if len(subs) == 1:
            out.append(lead)
        else:
            out.extend(f"{lead} {' '.join(s)}" for s in subs[1:])
    return out


def parse_body(text: str) -> tuple[str, list[str], list[str]]:
    """Return (headword, definitions, source tags) of one entry body."""
    lines = text.split("\n")
    first = lines[0]
    headword = squash(first.split("\\", 1)[0]) if "\\" in first else ""
    tags: list[str] = []
    blocks: list[list[str]] = [[]]
    for line in lines[_header_length(lines) :]:
        tag = _SOURCE_TAG.match(line)
        if tag:
            tags.append(squash(tag.group(1)))
        if tag or not line.strip():
            blocks.append([])  # whatever follows a source tag on its line is debris from the next entry
        else:
            blocks[-1].append(line)
    definitions: list[str] = []
    for block in blocks:
        if not block:
            continue
        first_line = block[0]
        indent = len(first_line) - len(first_line.lstrip())
        if indent >= 9 or first_line.lstrip().startswith(_SKIP_BLOCK):
            continue  # quotation, synonyms, usage note, phrase sub-entry
        for sense in _senses(block):
            d = _clean_definition(sense)
            if _is_definition(d):
                definitions.append(d)
    return headword, definitions, tags


def _is_definition(d: str) -> bool:
    if len(d) < 3 or not any(c.isalpha() for c in d) or "\\" in d:  # a backslash is header residue
        return False
    return not (_CROSS_REF.match(d) and len(d.split()) <= 6)


def dictd_bodies(
    index_lines: Iterable[str], dict_bytes: bytes, name: str, skip: tuple[str, ...] = ("00-", "00database")
) -> list[tuple[list[str], bytes]]:
    """Every unique body a dictd index points at, in body order, with the index words that point at it (in
    index order); words starting with ``skip`` (dictd's own database entries) are left out."""
    words_by_body: dict[tuple[int, int], list[str]] = defaultdict(list)
    for no, line in enumerate(index_lines, start=1):
        if not line.strip():
            continue
        try:
            word, offset, length = parse_index_line(line)
        except GcideParseError as exc:
            raise GcideParseError(f"{name}:{no}: {exc}") from None
        if not word.startswith(skip):
            words_by_body[(offset, length)].append(word)
    out = []
    for (offset, length), words in sorted(words_by_body.items()):
        raw = dict_bytes[offset : offset + length]
        if len(raw) != length:
            raise GcideParseError(f"{name}: body of {words[0]!r} runs past the end of the dictionary")
        out.append((words, raw))
    return out


def read_entries(index_lines: Iterable[str], dict_bytes: bytes, index_name: str = "gcide.index") -> list[Entry]:
    """Parse every unique body the index points at, in body order; skip dictd's ``00-database`` entries."""
    entries: list[Entry] = []
    for words, raw in dictd_bodies(index_lines, dict_bytes, index_name):
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            body = raw.decode("cp1252", errors="replace")  # three bodies carry stray Windows-1252 bytes
        headword, definitions, tags = parse_body(body)
        entries.append(
            Entry(
                headword=headword or words[0],
                index_words=tuple(sorted(set(words))),
                definitions=tuple(definitions),
                source_tags=tuple(dict.fromkeys(tags)),
            )
        )
    return entries


def load_entries(directory: Path = DICTD_DIR) -> list[Entry]:
    index = directory / "gcide.index"
    with gzip.open(directory / "gcide.dict.dz") as fh:  # dictzip is gzip with a random-access header
        data = fh.read()
    with index.open(encoding="utf-8") as fh:
        return read_entries(fh, data, str(index))


def input_files(directory: Path = DICTD_DIR) -> list[Path]:
    return [directory / "gcide.index", directory / "gcide.dict.dz"]
