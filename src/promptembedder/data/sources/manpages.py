"""Manual pages: the roff source of the pages that a fixed set of Debian packages install under
``/usr/share/man/man1`` .. ``man8`` (the file lists come from dpkg, so pages other packages happen to add
on this machine do not change the build).

Only two things are read from a page: the NAME line (``ls \\- list directory contents``) and the first
paragraph of DESCRIPTION. A small parser handles the man(7) macros those parts use (font macros,
paragraph breaks, escapes); pages that are only ``.so`` links to another page are skipped.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import squash

# Pinned: the Linux man-pages project and the core utilities every Debian system has.
PACKAGES = ("manpages", "manpages-dev", "man-db", "coreutils", "util-linux", "findutils", "grep", "sed", "tar")
_PAGE = re.compile(r"^/usr/share/man/man[1-8]/[^/]+\.[1-8][a-z]*\.gz$")
# Paragraph-ending requests of man(7) and the few mdoc/tbl ones the chosen pages use.
_BREAKS = {"PP", "LP", "P", "TP", "IP", "HP", "SS", "SH", "TS", "nf", "EX", "RS", "in", "sp", "br", "Bl", "Pp"}
_FONT_MACROS = {"B", "I", "R", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB", "Nm", "Ar", "Fn", "Xr"}
_ESCAPES = {
    r"\-": "-", r"\(em": "\u2014", r"\(en": "\u2013", r"\(aq": "'", r"\(dq": '"', r"\(lq": "\u201c",
    r"\(rq": "\u201d", r"\(oq": "\u2018", r"\(cq": "\u2019", r"\(bu": "\u2022", r"\(co": "\u00a9",
    r"\(mu": "\u00d7", r"\(>=": "\u2265", r"\(<=": "\u2264", r"\e": "\\", r"\ ": " ", r"\~": " ",
    r"\&": "", r"\|": "", r"\^": "", r"\/": "", r"\,": "", r"\:": "", r"\%": "", r"\c": "",
}  # fmt: skip
_ESCAPE = re.compile("|".join(re.escape(k) for k in sorted(_ESCAPES, key=len, reverse=True)))
_FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
_SIZE = re.compile(r"\\s[+-]?\d+")
_OTHER = re.compile(r"\\(?:\*(?:\[[^\]]*\]|\(..|.)|\(..|\[[^\]]*\]|[a-zA-Z])")


@dataclass(frozen=True)
class ManPage:
    page: str  # "ls.1"
    package: str
    name_line: str  # "ls - list directory contents"
    description: str  # first paragraph of DESCRIPTION


def plain(text: str) -> str:
    """Roff inline markup to plain text: fonts, sizes and the common escapes."""
    text = _FONT.sub("", _SIZE.sub("", text))
    text = _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)
    return _OTHER.sub("", text)


def _macro_text(name: str, args: str) -> str:
    """The text a font macro prints. Alternating macros (.BR) join their arguments without spaces."""
    parts = re.findall(r'"([^"]*)"|(\S+)', args)
    words = [a or b for a, b in parts]
    if len(name) == 2 and name.isupper() and name not in ("SM", "SB"):
        return "".join(words)
    return " ".join(words)


def sections(source: str) -> dict[str, list[str]]:
    """Lines of each ``.SH`` section (upper-cased title -> raw lines), comments dropped."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in source.split("\n"):
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".SH", ".Sh")):
            title = plain(line[3:].strip().strip('"')).upper()
            current = out.setdefault(title, [])
        elif current is not None:
            current.append(line)
    return out


def first_paragraph(lines: list[str]) -> str:
    """Text up to the first paragraph break that follows some text."""
    words: list[str] = []
    for line in lines:
        if line.startswith((".", "'")):
            name, _, args = line[1:].strip().partition(" ")
            if name in _BREAKS:
                if words:
                    break
                continue
            if name in _FONT_MACROS:
                words.append(plain(_macro_text(name, args)))
            continue  # any other request sets layout, not text
        words.append(plain(line))
    return squash(" ".join(words))


def parse_page(source: str) -> tuple[str, str] | None:
    """(NAME line, first DESCRIPTION paragraph), or None for a link page or one missing either part."""
    if source.lstrip().startswith(".so "):
        return None
    secs = sections(source)
    name = first_paragraph(secs.get("NAME", []))
    desc = first_paragraph(secs.get("DESCRIPTION", []))
    if " - " not in name or len(desc.split()) < 5:
        return None
    return squash(name), desc


def package_pages(package: str) -> list[Path]:
    """The page files dpkg says ``package`` installed, sorted; empty when it is not installed."""
    done = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if done.returncode != 0:
        return []
    return sorted(Path(p) for p in done.stdout.split("\n") if _PAGE.match(p) and Path(p).is_file())


def load_pages(packages: tuple[str, ...] = PACKAGES) -> list[ManPage]:
    out: list[ManPage] = []
    seen: set[Path] = set()
    for pkg in packages:
        for path in package_pages(pkg):
            if path in seen:
                continue
            seen.add(path)
            with gzip.open(path) as fh:
                parsed = parse_page(fh.read().decode("utf-8", errors="replace"))
            if parsed:
                out.append(ManPage(path.name.removesuffix(".gz"), pkg, *parsed))
    return out


def input_files(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return [p for pkg in packages for p in package_pages(pkg)]
