"""WordNet 3.0 from Debian ``wordnet-base``: the ``data.{noun,verb,adj,adv}`` files.

A data line is ``offset lexfile type word_count(hex) (word lex_id)* pointer_count (pointer)* [frames] | gloss``;
the gloss is a definition followed by ``; "example"`` parts (see wndb(5WN)).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import squash

WORDNET_DIR = Path("/usr/share/wordnet")
POS_FILES = ("noun", "verb", "adj", "adv")
_POS_LETTER = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}

# lexnames(5WN): the lexicographer file number in column 2 indexes this list.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)  # fmt: skip

# Adjectives may carry a syntactic marker glued to the word: galore(ip), elect(p), ...
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
# An example starts where a quote opens the gloss or follows a semicolon (a few glosses use a colon).
_FIRST_EXAMPLE = re.compile(r'(?:^|[;:])\s*"')
_QUOTED = re.compile(r'"([^"]+)"')


class WordNetParseError(ValueError):
    pass


@dataclass(frozen=True)
class Synset:
    """One synset. ``id`` is the file's part of speech letter plus the byte offset, e.g. ``n00001740``."""

    id: str
    pos: str  # n, v, a, s (satellite adjective) or r
    lexname: str
    lemmas: tuple[str, ...]  # underscores turned to spaces, adjective markers dropped, order kept
    definition: str
    examples: tuple[str, ...]
    hypernyms: tuple[str, ...] = ()  # ids of its hypernyms and instance hypernyms (pointers @ and @i)


def split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Split a gloss into its definition and its quoted examples.

    Only quotes that open the gloss or follow a semicolon or colon are examples; a quote inside the definition
    (``known as "on behalf of"``) stays in the definition. Attributions after an example
    (``"..."- Henry Miller``) are dropped with the example tail.
    """
    gloss = gloss.strip()
    m = _FIRST_EXAMPLE.search(gloss)
    if not m:
        return squash(gloss.rstrip("; ")), ()
    definition = squash(gloss[: m.start()].rstrip("; "))
    examples = tuple(e for e in (squash(x) for x in _QUOTED.findall(gloss[m.start() :])) if e)
    return definition, examples


def parse_data_line(line: str, pos_file: str) -> Synset:
    """Parse one line of ``data.<pos_file>``; raise :class:`WordNetParseError` on a malformed line."""
    try:
        head, gloss = line.rstrip("\n").split(" | ", 1)
    except ValueError:
        raise WordNetParseError("no ' | ' separating the gloss") from None
    cols = head.split()
    try:
        offset, lexnum, ss_type, wcount = cols[0], int(cols[1]), cols[2], int(cols[3], 16)
        words = cols[4 : 4 + 2 * wcount : 2]
    except (IndexError, ValueError):
        raise WordNetParseError("bad synset header") from None
    if len(offset) != 8 or not offset.isdigit() or len(words) != wcount or ss_type not in "nvasr":
        raise WordNetParseError("bad synset header")
    if not 0 <= lexnum < len(LEXNAMES):
        raise WordNetParseError(f"unknown lexicographer file {lexnum}")
    lemmas = tuple(dict.fromkeys(_ADJ_MARKER.sub("", w).replace("_", " ") for w in words))
    definition, examples = split_gloss(gloss)
    sid = f"{_POS_LETTER[pos_file]}{offset}"
    return Synset(sid, ss_type, LEXNAMES[lexnum], lemmas, definition, examples, _hypernyms(cols[4 + 2 * wcount :]))


def _hypernyms(cols: list[str]) -> tuple[str, ...]:
    """Hypernym ids from the pointer list ``p_cnt (symbol offset pos source/target)*``. A satellite's
    pointer names its file by ``s``, which lives in the adjective file like ``a``."""
    try:
        count = int(cols[0])
    except (IndexError, ValueError):
        raise WordNetParseError("bad pointer count") from None
    ptrs = cols[1 : 1 + 4 * count]
    if len(ptrs) != 4 * count:
        raise WordNetParseError("pointer list shorter than its count")
    out = []
    for i in range(0, len(ptrs), 4):
        symbol, offset, pos = ptrs[i : i + 3]
        if symbol in ("@", "@i"):
            out.append(f"{'a' if pos == 's' else pos}{offset}")
    return tuple(out)


def parse_data_file(lines: Iterable[str], pos_file: str, name: str = "") -> Iterator[Synset]:
    """Yield the synsets of one data file, skipping the licence header (lines that start with spaces)."""
    for no, line in enumerate(lines, start=1):
        if line.startswith("  ") or not line.strip():
            continue
        try:
            yield parse_data_line(line, pos_file)
        except WordNetParseError as exc:
            raise WordNetParseError(f"{name or pos_file}:{no}: {exc}") from None


def load_synsets(directory: Path = WORDNET_DIR) -> list[Synset]:
    """All synsets of the four data files, in file order (noun, verb, adj, adv; by offset within)."""
    out: list[Synset] = []
    for pos_file in POS_FILES:
        path = directory / f"data.{pos_file}"
        with path.open(encoding="utf-8") as fh:
            out.extend(parse_data_file(fh, pos_file, str(path)))
    return out


def input_files(directory: Path = WORDNET_DIR) -> list[Path]:
    return [directory / f"data.{p}" for p in POS_FILES]
