"""The parsers of the sources added for issue 13, each on an excerpt cut from the real installed files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from promptembedder.data.sources import dictd, fortunes, manpages, pydoc, sword, wordnet

FIXTURES = Path(__file__).parent / "fixtures"
Bodies = dict[str, list[tuple[tuple[str, ...], str]]]

# ---------------------------------------------------------------- WordNet hypernym pointers


def test_wordnet_hypernym_pointers() -> None:
    synsets = {s.id: s for s in wordnet.load_synsets(FIXTURES / "wordnet")}
    assert synsets["n00036299"].lemmas == ("beachhead", "foothold")
    assert synsets["n00036299"].hypernyms == ("n00035189",)
    # "kick" has eleven pointers (derivations, hyponyms); only the @ one is a hypernym.
    assert synsets["n00136329"].hypernyms == ("n01173038",)
    line = "00001740 03 n 01 entity 0 002 @ 00002137 n 0000 @i 00003553 n 0000 | that which exists"
    assert wordnet.parse_data_line(line, "noun").hypernyms == ("n00002137", "n00003553")
    with pytest.raises(wordnet.WordNetParseError, match="pointer list shorter"):
        wordnet.parse_data_line("00001740 03 n 01 entity 0 002 @ 00002137 n 0000 | x", "noun")


# ---------------------------------------------------------------- dict-devil, dict-elements


def test_devil_entries_drop_quotations_and_use_the_printed_headword(dictd_bodies: Bodies) -> None:
    entries = {e.word: e for e in dictd.read_devil(dictd_bodies["devil"])}
    # The index files LAUREATE under "laurel" as well: the word comes from the body, not the index.
    assert set(entries) == {"abasement", "admonition", "laureate", "laurel", "zigzag", "zoology"}
    assert entries["admonition"].pos == "n."
    assert entries["admonition"].definition == "Gentle reproof, as with a meat-axe. Friendly warning."
    assert "perdition" not in entries["admonition"].definition  # the verse quotation is gone
    assert entries["zigzag"].pos == "v.t."
    assert "_" not in entries["zigzag"].definition and "(From zed, z, and jag" in entries["zigzag"].definition


def test_devil_body_without_a_headword_is_skipped() -> None:
    assert dictd.parse_devil_body("See ABASEMENT.\n") is None


def test_elements_parse_the_fields_and_the_prose(dictd_bodies: Bodies) -> None:
    els = dictd.read_elements(dictd_bodies["elements"])
    assert [(e.number, e.name, e.symbol) for e in els] == [
        (1, "hydrogen", "H"),
        (30, "zinc", "Zn"),
        (100, "fermium", "Fm"),
    ]
    assert els[0].description.startswith("Colourless, odourless gaseous chemical element.")
    assert "Atomic" not in els[2].description


def test_dictd_reader_on_the_dictzip_layout(tmp_path: Path) -> None:
    for name in ("devil", "elements"):
        shutil.copy(FIXTURES / name / f"{name}.index", tmp_path / f"{name}.index")
        (tmp_path / f"{name}.dict.dz").write_bytes(gzip.compress((FIXTURES / name / f"{name}.dict").read_bytes()))
    assert len(dictd.load_devil(tmp_path)) == 6
    assert len(dictd.load_elements(tmp_path)) == 3


def test_dictd_index_past_the_end_names_the_word() -> None:
    with pytest.raises(ValueError, match="zoology"):
        dictd.read_bodies(["zoology\tA\tBAAA"], b"short", "devil.index")


# ---------------------------------------------------------------- fortunes


def test_fortunes_split_on_percent_lines_and_drop_long_ones() -> None:
    items = fortunes.load_fortunes(FIXTURES / "fortunes")
    by_cat: dict[str, list[str]] = {}
    for f in items:
        by_cat.setdefault(f.category, []).append(f.text)
    assert {c: len(v) for c, v in by_cat.items()} == {"computers": 5, "definitions": 5, "literature": 4}
    assert by_cat["literature"][2] == 'A horse! A horse! My kingdom for a horse! -- Wm. Shakespeare, "Richard III"'
    assert all(len(t) <= fortunes.MAX_CHARS and "\n" not in t and t != "%" for v in by_cat.values() for t in v)


def test_every_fortune_category_has_a_description_and_offensive_ones_are_not_listed() -> None:
    assert all(desc and desc == desc.strip() for desc in fortunes.CATEGORIES.values())
    assert not {"off", "fortunes", "cookie", "miscellaneous", "ascii-art"} & set(fortunes.CATEGORIES)


# ---------------------------------------------------------------- manual pages


@pytest.mark.parametrize(
    ("page", "name", "start"),
    [
        (
            "ls.1",
            "ls - list directory contents",
            "List information about the FILEs (the current directory by default).",
        ),
        ("pipe.2", "pipe, pipe2 - create pipe", "pipe() creates a pipe, a unidirectional data channel"),
        (
            "signal.7",
            "signal - overview of signals",
            'Linux supports both POSIX reliable signals (hereinafter "standard',
        ),
    ],
)
def test_manpage_name_and_first_description_paragraph(page: str, name: str, start: str) -> None:
    parsed = manpages.parse_page((FIXTURES / "manpages" / page).read_text(encoding="utf-8"))
    assert parsed is not None
    assert parsed[0] == name
    assert parsed[1].startswith(start)
    assert "\\f" not in parsed[1] and "\\-" not in parsed[1] and ".BR" not in parsed[1]


def test_manpage_first_paragraph_stops_at_the_break() -> None:
    desc = manpages.parse_page((FIXTURES / "manpages" / "ls.1").read_text(encoding="utf-8"))[1]
    assert "Sort entries alphabetically if none of -cftuvSUX nor --sort is specified." in desc
    assert "Mandatory arguments" not in desc  # the next paragraph


def test_manpage_link_pages_and_pages_without_parts_are_skipped() -> None:
    assert manpages.parse_page(".so man3/printf.3\n") is None
    assert manpages.parse_page(".TH X 1\n.SH NAME\nx \\- y\n") is None


def test_roff_escapes() -> None:
    assert manpages.plain(r"\fB\-\-all\fR and \(em \fIfile\fP\(aqs") == "--all and \u2014 file's"


# ---------------------------------------------------------------- Python docstrings


def test_docstrings_from_source_with_signatures() -> None:
    source = (FIXTURES / "pydoc" / "bisect.py.txt").read_text(encoding="utf-8")
    fns = {f.qualname: f for f in pydoc.functions_in_source(source, "bisect", "stdlib")}
    assert set(fns) == {"bisect.insort_right", "bisect.insort_left", "bisect.bisect_right", "bisect.bisect_left"}
    assert fns["bisect.bisect_left"].signature == "bisect_left(a, x, lo=0, hi=None, *, key=None)"
    assert fns["bisect.insort_right"].summary == "Insert item x in list a, and keep it sorted assuming a is sorted."


def test_docstring_rules() -> None:
    src = '''
def _private(a):
    """Private helpers are not part of the public API."""
class Thing:
    def method(self, a, /, b, *args, c=3, **kw):
        """Do the thing to a and b, with extras.

        Parameters are described here.
        """
    def short(self):
        """Too short."""
def native(x):
    """native(x) -> int, a C-style docstring that restates the signature."""
'''
    fns = list(pydoc.functions_in_source(src, "pkg.mod", "pkg"))
    assert [(f.qualname, f.signature, f.summary) for f in fns] == [
        ("pkg.mod.Thing.method", "method(a, /, b, *args, c=3, **kw)", "Do the thing to a and b, with extras.")
    ]
    assert list(pydoc.functions_in_source("def broken(:\n", "m", "p")) == []


def test_module_names_drop_private_parts_and_skip_tests(tmp_path: Path) -> None:
    root = tmp_path / "scipy"
    assert pydoc._module_name(root, root / "linalg" / "_basic.py", "scipy") == "scipy.linalg"
    assert pydoc._module_name(root, root / "linalg" / "tests" / "test_basic.py", "scipy") is None
    assert pydoc._module_name(root, root / "_lib" / "util.py", "scipy") is None  # a private package
    np_root = tmp_path / "numpy"
    assert pydoc._module_name(np_root, np_root / "_core" / "fromnumeric.py", "numpy") == "numpy.fromnumeric"


# ---------------------------------------------------------------- SWORD commentary and Nave's


def test_commentary_notes_are_runs_of_the_same_entry(mhcc_verses: list) -> None:
    notes = sword.notes_from_verses(mhcc_verses)
    assert [(n.testament, n.book, n.chapter, n.first, n.last) for n in notes] == [
        ("ot", "Gen", 1, 1, 2),
        ("ot", "Gen", 1, 3, 5),
        ("ot", "Gen", 1, 6, 6),
        ("nt", "Matt", 1, 1, 2),
    ]
    first = notes[0].text
    # The book introduction and the chapter outline table come before the marker and are dropped.
    assert first.startswith("The first verse of the Bible gives us a satisfying and useful account")
    assert "Genesis is a name taken from the Greek" not in first and "(1-2)" not in first
    assert notes[1].text.startswith("God said, Let there be light; he willed it")
    assert "<" not in "".join(n.text for n in notes)


def test_nave_zld_reader_and_topics() -> None:
    entries = sword.read_zld(FIXTURES / "sword" / "nave")
    assert [k for k, _ in entries] == ["ABADDON", "ABAGTHA", "ABANA", "ABARIM", "CAVALRY"]
    topics = sword.load_topics(FIXTURES / "sword" / "nave")
    assert sword.Topic("Abagtha", "A Persian chamberlain", ("Esth.1.10",)) in topics
    cavalry = [t for t in topics if t.topic == "Cavalry"]
    assert [t.subtopic for t in cavalry] == ["Mounted: On horses", "Mounted: On camels"]
    # Verse ranges (Rev.9.16-Rev.9.18) do not pair with one text; "See NEBO" is a cross-reference.
    assert "Rev.9.16" not in cavalry[0].refs and cavalry[0].refs[0] == "Exod.14.23"
    assert not [t for t in topics if t.topic == "Abarim"]


def test_zld_bad_record_names_the_file(tmp_path: Path) -> None:
    for suffix in (".idx", ".zdx", ".zdt"):
        shutil.copy(FIXTURES / "sword" / f"nave{suffix}", tmp_path / f"nave{suffix}")
    (tmp_path / "nave.dat").write_bytes(b"ABADDON without the separator")
    with pytest.raises(ValueError, match=r"nave\.dat: record 0"):
        sword.read_zld(tmp_path / "nave")
