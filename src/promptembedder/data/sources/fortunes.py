"""Fortune cookies from Debian ``fortunes`` and ``fortunes-min``: ``/usr/share/games/fortunes/<category>``,
plain text with one fortune per ``%``-separated block (the ``.dat`` files are strfile's indexes and the
``.u8`` names are links). The offensive collection (``fortunes-off``, under ``off/``) is never read.

Only categories whose fortunes share a theme get a label description: grab-bags ("fortunes", "cookie",
"miscellaneous") and files of pictures or in other languages are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import squash

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Past this many characters a fortune is a short story or an ASCII picture, not a saying.
MAX_CHARS = 600

# category -> a short description of what its fortunes are, written for the label-description tasks.
CATEGORIES: dict[str, str] = {
    "art": "sayings and jokes about art, artists and creativity",
    "computers": "jokes and observations about computers, programming and programmers",
    "debian": "quotes from the Debian GNU/Linux project's developers and mailing lists",
    "definitions": "humorous definitions of words and phrases",
    "disclaimer": "parody disclaimers and legal fine print",
    "drugs": "quips about drugs, alcohol and smoking",
    "education": "remarks about schools, teachers, students and learning",
    "ethnic": "jokes about nationalities and regional stereotypes",
    "food": "sayings and jokes about food, cooking and eating",
    "goedel": "jokes about logic, paradoxes and self-reference",
    "humorists": "witty remarks by famous humorists and comedians",
    "kids": "sayings and jokes about children and parenting",
    "law": "humorous laws, legal maxims and jokes about lawyers",
    "linux": "quotes from Linux kernel developers and users",
    "literature": "quotations from works of literature and famous writers",
    "love": "sayings about love, romance and relationships",
    "magic": "sayings about magic, wizards and the supernatural",
    "medicine": "jokes about doctors, medicine and health",
    "men-women": "jokes and observations about men, women and marriage",
    "news": "odd newspaper headlines and news items",
    "paradoxum": "paradoxes and contradictory sayings",
    "people": "quotations by and about famous people",
    "perl": "quotes about the Perl programming language from its community",
    "pets": "jokes and sayings about pets, cats and dogs",
    "platitudes": "platitudes, truisms and cliched advice",
    "politics": "quotations and jokes about politics, government and politicians",
    "riddles": "riddles and puzzles with their answers",
    "science": "quotations and jokes about science and scientists",
    "songs-poems": "lyrics, verses and short poems",
    "sports": "quotes and jokes about sports, athletes and games",
    "startrek": "quotations from the Star Trek television series",
    "tao": "passages in the style of the Tao Te Ching and Zen sayings",
    "wisdom": "proverbs and words of wisdom",
    "work": "jokes and sayings about work, jobs, bosses and offices",
    "zippy": "surreal non sequiturs spoken by the comic-strip character Zippy the Pinhead",
}


@dataclass(frozen=True)
class Fortune:
    category: str
    text: str  # whitespace collapsed, attribution kept


def parse_fortunes(text: str, category: str) -> list[Fortune]:
    """The fortunes of one file in file order, whitespace collapsed; empty and over-long ones dropped."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n%\n"):
        block = block.removesuffix("\n%").strip("\n")
        if block.strip() == "%" or not block.strip() or len(block) > MAX_CHARS:
            continue
        out.append(Fortune(category, squash(block)))
    return out


def load_fortunes(directory: Path = FORTUNE_DIR) -> list[Fortune]:
    """The fortunes of every described category, by category; a category missing on disk is skipped."""
    out: list[Fortune] = []
    for category in sorted(CATEGORIES):
        path = directory / category
        if path.is_file():
            out.extend(parse_fortunes(path.read_text(encoding="utf-8", errors="replace"), category))
    return out


def input_files(directory: Path = FORTUNE_DIR) -> list[Path]:
    return [directory / c for c in sorted(CATEGORIES) if (directory / c).is_file()]
