"""Debian package descriptions from apt's lists: ``*_i18n_Translation-en*`` (summary and long description)
joined with ``*_Packages*`` (section), as left under ``/var/lib/apt/lists`` by
``apt-get update -o Acquire::Languages=en``.

These lists follow the archive, so a build is a snapshot of the day it ran; the manifest records the
``Date:`` of each release file and the hash of every list read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

APT_LISTS = Path("/var/lib/apt/lists")
_BOILERPLATE = re.compile(r"\b(?:transitional|dummy)\b", re.I)


@dataclass(frozen=True)
class Package:
    name: str
    section: str
    summary: str
    description: str  # paragraphs joined by newlines; list items keep their own lines


def read_list_file(path: Path) -> str:
    """The text of an apt list, whichever compression apt chose for it."""
    suffix = path.suffix
    if suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
    elif suffix in (".xz", ".lzma"):
        data = lzma.decompress(path.read_bytes())
    elif suffix == ".bz2":
        data = bz2.decompress(path.read_bytes())
    elif suffix in (".lz4", ".zst"):
        # Python has no lz4/zstd in its standard library; apt's own helper reads what apt wrote.
        helper = Path("/usr/lib/apt/apt-helper")
        tool = "lz4" if suffix == ".lz4" else "zstd"
        if helper.exists():
            cmd = [str(helper), "cat-file", str(path)]
        elif shutil.which(tool):
            cmd = [tool, "-dc", str(path)]
        else:
            raise RuntimeError(f"cannot decompress {path}: install apt or {tool}")
        data = subprocess.run(cmd, check=True, capture_output=True).stdout
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def parse_stanzas(text: str, name: str = "") -> Iterator[dict[str, str]]:
    """deb822 stanzas as dicts; continuation lines (leading space) stay in their field, newline-joined."""
    fields: dict[str, str] = {}
    key = ""
    for no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif line[0] in " \t":
            if not key:
                raise ValueError(f"{name}:{no}: continuation line outside a field")
            fields[key] += "\n" + line
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"{name}:{no}: expected 'Field: value'")
            fields[key] = value.strip()
    if fields:
        yield fields


def description_text(body_lines: Iterable[str]) -> str:
    """A long description as text: ' .' separates paragraphs, lines indented further are verbatim."""
    paragraphs: list[list[str]] = [[]]
    for raw in body_lines:
        line = raw[1:] if raw.startswith(" ") else raw
        if line.strip() == ".":
            paragraphs.append([])
        elif line.startswith((" ", "\t")):
            paragraphs[-1].append("\n" + line.strip())  # list items and code keep their own line
        elif line.strip():
            paragraphs[-1].append(" " + line.strip())
    out = [re.sub(r"[ \t]+", " ", "".join(p)).strip() for p in paragraphs]
    return "\n".join(p for p in out if p)


def list_files(lists_dir: Path, kind: str) -> list[Path]:
    """apt list files of one kind ("Translation-en" or "Packages"), sorted by name."""
    pattern = "*_i18n_Translation-en*" if kind == "Translation-en" else "*_binary-*_Packages*"
    return sorted(p for p in lists_dir.glob(pattern) if not p.name.endswith((".diff", ".IndexDiff")))


def release_label(path: Path) -> str:
    """'bookworm/main/i18n/Translation-en.lz4' from an apt list file name, dropping the mirror's name."""
    name = path.name
    return name.split("_dists_", 1)[1].replace("_", "/") if "_dists_" in name else name


def load_packages(translations: dict[str, str], package_lists: dict[str, str]) -> tuple[list[Package], dict[str, int]]:
    """Join descriptions with sections. Inputs map a file label to its text; returns packages by name
    and counts of what was left out and why."""
    sections: dict[str, set[str]] = defaultdict(set)
    current_md5: dict[str, set[str]] = defaultdict(set)
    for label, text in sorted(package_lists.items()):
        for st in parse_stanzas(text, label):
            if "Package" in st and "Section" in st:
                sections[st["Package"]].add(st["Section"])
                if "Description-md5" in st:
                    current_md5[st["Package"]].add(st["Description-md5"])
    candidates: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for label, text in sorted(translations.items()):
        for st in parse_stanzas(text, label):
            if "Package" in st and "Description-en" in st:
                candidates[st["Package"]].add((st.get("Description-md5", ""), st["Description-en"]))
    dropped: dict[str, int] = defaultdict(int)
    out: list[Package] = []
    for name in sorted(candidates):
        cands = sorted(candidates[name])
        # Several suites may list a package; prefer the description its Packages entry points at.
        matching = [c for c in cands if c[0] in current_md5.get(name, ())]
        _, desc = (matching or cands)[0]
        summary, _, body = desc.partition("\n")
        text = description_text(body.split("\n"))
        if name not in sections:
            dropped["no section (not built for this architecture)"] += 1
        elif not text or len(text.split()) < 5:
            dropped["no long description"] += 1
        elif _BOILERPLATE.search(summary):
            dropped["transitional or dummy package"] += 1
        else:
            out.append(Package(name, min(sections[name]), summary.strip(), text))
    return out, dict(sorted(dropped.items()))


def read_lists(lists_dir: Path = APT_LISTS) -> tuple[dict[str, str], dict[str, str]]:
    translations = {release_label(p): read_list_file(p) for p in list_files(lists_dir, "Translation-en")}
    packages = {release_label(p): read_list_file(p) for p in list_files(lists_dir, "Packages")}
    return translations, packages


def release_dates(lists_dir: Path = APT_LISTS) -> dict[str, str]:
    """{suite: Date} from the InRelease files: what identifies the snapshot a build read."""
    out: dict[str, str] = {}
    for p in sorted(lists_dir.glob("*_InRelease")):
        fields = dict(line.split(": ", 1) for line in p.read_text(errors="replace").splitlines()[:40] if ": " in line)
        suite = release_label(p).removesuffix("/InRelease")
        out[suite] = f"{fields.get('Suite', '?')} {fields.get('Version', '')} {fields.get('Date', '?')}".strip()
    return out
