"""The King James Version and the World English Bible from Debian's ``sword-text-kjv`` and
``sword-text-web``, read with pysword (modules ``engKJV2006eb`` and ``engWEB2015eb``).

Verses come out as OSIS markup: words wrapped in ``<w lemma="strong:...">``, translators' footnotes in
``<note>``, psalm titles in ``<title>``, poetry and paragraph milestones. The two translations differ in
versification (KJV vs NRSVA) but agree on most references, so verses are aligned by OSIS reference.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import tidy

SWORD_DIR = Path("/usr/share/sword")
KJV_MODULE = "engKJV2006eb"
WEB_MODULE = "engWEB2015eb"

# Footnotes and headings are editorial, not the verse; their content goes with the tag.
_DROP_WITH_CONTENT = re.compile(r"<(note|title)\b[^>]*>.*?</\1>", re.S)
# Structural tags may sit between two words with no space around them.
_BLOCK_TAG = re.compile(r"</?(?:div|l|lg|p|milestone|br|chapter|verse)\b[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")
# A few USFM character markers survived the conversion to OSIS (``by my name \\nd JEHOVAH``).
_USFM = re.compile(r"\\[a-z]+\d?\*?\s?")


@dataclass(frozen=True)
class VersePair:
    ref: str  # OSIS reference, e.g. "Exod.20.13"
    testament: str  # "ot" or "nt"
    book: str  # OSIS book name
    chapter: int
    verse: int
    kjv: str
    web: str


def clean_osis(raw: str) -> str:
    """Plain verse text from a verse's OSIS markup."""
    text = _DROP_WITH_CONTENT.sub(" ", raw)
    text = _BLOCK_TAG.sub(" ", text)
    text = _USFM.sub(" ", _ANY_TAG.sub("", text))
    return tidy(html.unescape(text).replace("¶", ""))


def read_module(sword_dir: Path, module: str) -> dict[tuple[str, str, int, int], str]:
    """All verses of one module as {(testament, book, chapter, verse): raw OSIS}, in canonical order."""
    from pysword.modules import SwordModules  # imported here so the rest of the package works without it

    modules = SwordModules(str(sword_dir))
    modules.parse_modules()
    bible = modules.get_bible_from_module(module)
    inner = getattr(bible, "_decompressed_text", None)
    if inner is not None:
        # pysword inflates a whole compressed block for every verse it reads; keeping the last few
        # blocks turns a minute and a half into seconds.
        bible._decompressed_text = functools.lru_cache(maxsize=8)(inner)
    out: dict[tuple[str, str, int, int], str] = {}
    for testament, books in bible.get_structure().get_books().items():
        for book in books:
            raw = list(bible.get_iter(books=[book.name], clean=False))
            refs = [(c + 1, v + 1) for c, n in enumerate(book.chapter_lengths) for v in range(n)]
            if len(raw) != len(refs):
                raise ValueError(f"{module} {book.name}: {len(raw)} verses, versification says {len(refs)}")
            for (chapter, verse), text in zip(refs, raw, strict=True):
                out[(testament, book.osis_name, chapter, verse)] = text
    return out


def align(kjv: dict[tuple[str, str, int, int], str], web: dict[tuple[str, str, int, int], str]) -> list[VersePair]:
    """Pairs of verses present and non-empty in both translations, in KJV order."""
    pairs: list[VersePair] = []
    for key, raw in kjv.items():
        if key not in web:
            continue
        a, b = clean_osis(raw), clean_osis(web[key])
        if a and b:
            testament, book, chapter, verse = key
            pairs.append(VersePair(f"{book}.{chapter}.{verse}", testament, book, chapter, verse, a, b))
    return pairs


def load_pairs(sword_dir: Path = SWORD_DIR) -> list[VersePair]:
    return align(read_module(sword_dir, KJV_MODULE), read_module(sword_dir, WEB_MODULE))


def module_dirs(sword_dir: Path = SWORD_DIR) -> list[Path]:
    return [sword_dir / "modules" / "texts" / "ztext" / m for m in (KJV_MODULE, WEB_MODULE)]
