"""Small text helpers shared by the parsers and the build: cleaning, normalising, stable hashing."""

from __future__ import annotations

import hashlib
import re

_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)\]’”])")


def squash(text: str) -> str:
    """Collapse runs of whitespace to one space and trim; the form every text is stored in."""
    return _WS.sub(" ", text).strip()


def tidy(text: str) -> str:
    """:func:`squash`, and drop spaces left before punctuation when markup between words was removed."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", squash(text))


def normalise(text: str) -> str:
    """The key the leakage check compares: case-folded, whitespace collapsed."""
    return _WS.sub(" ", text.casefold()).strip()


def stable_hash(key: str) -> str:
    """A hex digest that, unlike ``hash()``, is the same in every process and on every machine."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
