"""Docstrings and signatures of public functions in a pinned set of installed Python packages, read
with :mod:`ast` from their source files (nothing is imported, so no package code runs).

A function is public when neither it nor its class starts with an underscore and it is not inside a
test package. Private modules are read too (``scipy/linalg/_basic.py``), since most of SciPy and
scikit-learn lives there and is re-exported; their names drop the private parts (``scipy.linalg.solve``).
Only the first paragraph of a docstring is kept: the summary
that numpydoc and Google style put first, before parameter tables.
"""

from __future__ import annotations

import ast
import importlib.util
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from promptembedder.data.text import squash

# import name -> distribution, for the manifest; "stdlib" stands for the running interpreter's library.
PACKAGES: dict[str, str] = {
    "stdlib": "python",
    "numpy": "numpy",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "torch": "torch",
}
# Standard-library top-level modules and packages read (the rest is test suites, IDLE, tkinter, ...).
STDLIB = (
    "argparse", "base64", "bisect", "calendar", "collections", "colorsys", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "fnmatch", "fractions",
    "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http",
    "imaplib", "inspect", "ipaddress", "json", "logging", "mailbox", "mimetypes", "multiprocessing",
    "netrc", "ntpath", "os", "pathlib", "pickle", "pkgutil", "platform", "plistlib", "poplib", "posixpath",
    "pprint", "queue", "quopri", "random", "re", "sched", "secrets", "selectors", "shlex", "shutil",
    "smtplib", "socket", "socketserver", "ssl", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback", "types", "typing",
    "unittest", "urllib", "uuid", "warnings", "wave", "weakref", "xml", "zipfile", "zoneinfo",
)  # fmt: skip
MIN_WORDS = 4
KEEP_PRIVATE = {"numpy._core"}


@dataclass(frozen=True)
class PyFunction:
    package: str  # "numpy", "stdlib"
    qualname: str  # "numpy.linalg.norm", "collections.OrderedDict.move_to_end"
    signature: str  # "norm(x, ord=None, axis=None, keepdims=False)"
    summary: str  # first paragraph of the docstring


def _arg_list(args: ast.arguments) -> str:
    """The parameters as written, defaults as source text; annotations left out to keep it short."""
    parts: list[str] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (a, d) in enumerate(zip(positional, defaults, strict=True)):
        parts.append(a.arg if d is None else f"{a.arg}={ast.unparse(d)}")
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg:
        parts.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        parts.append("*")
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parts.append(a.arg if d is None else f"{a.arg}={ast.unparse(d)}")
    if args.kwarg:
        parts.append(f"**{args.kwarg.arg}")
    if parts and parts[0] in ("self", "cls"):
        parts = parts[1:]
    return ", ".join(parts)


def summary(doc: str) -> str:
    """The first paragraph of a docstring, whitespace collapsed."""
    return squash(doc.strip().split("\n\n", 1)[0])


def functions_in_source(source: str, module: str, package: str) -> Iterator[PyFunction]:
    """Public functions and methods of one module's source that have a docstring of some substance."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[PyFunction]:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body, f"{prefix}.{node.name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node)
                text = summary(doc) if doc else ""
                # C functions' docstrings open with their own signature; that would be the answer itself.
                if len(text.split()) >= MIN_WORDS and not text.startswith((">>>", "..", f"{node.name}(")):
                    sig = f"{node.name}({_arg_list(node.args)})"
                    yield PyFunction(package, f"{prefix}.{node.name}", sig, text)

    yield from walk(tree.body, module)


def _module_name(root: Path, path: Path, top: str) -> str | None:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if any(p in ("tests", "test", "testing", "conftest", "setup") or p.startswith("test_") for p in parts):
        return None
    dirs = parts[:-1] if path.name != "__init__.py" else parts
    for i, d in enumerate(dirs):
        # A private package is internals (torch._dynamo, torch._inductor), except NumPy's core, which
        # is where numpy.sum and friends are defined.
        if d.startswith("_") and ".".join([top, *dirs[: i + 1]]) not in KEEP_PRIVATE:
            return None
    parts = [p for p in parts if not p.startswith("_")]
    return ".".join([top, *parts]) if parts else top


def package_roots(package: str) -> list[tuple[str, Path]]:
    """(top-level module name, file or folder) pairs to read for ``package``; empty if not installed."""
    if package == "stdlib":
        lib = Path(sysconfig.get_paths()["stdlib"])
        out = []
        for name in STDLIB:
            p = lib / name if (lib / name).is_dir() else lib / f"{name}.py"
            if p.exists():
                out.append((name, p))
        return out
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [(package, Path(next(iter(spec.submodule_search_locations))))]


def source_files(package: str) -> list[tuple[str, Path]]:
    """(module name, path) of every public module of ``package``, sorted by module name."""
    out = []
    for top, root in package_roots(package):
        if root.is_file():
            out.append((top, root))
            continue
        for path in root.rglob("*.py"):
            name = _module_name(root, path, top)
            if name is not None:
                out.append((name, path))
    return sorted(out)


def load_functions(packages: tuple[str, ...] = tuple(PACKAGES)) -> list[PyFunction]:
    """Every public documented function, the first one of each qualified name (a private module and
    its public re-export, or two Python versions of one module, would otherwise give it twice)."""
    out: dict[str, PyFunction] = {}
    for package in packages:
        for module, path in source_files(package):
            for fn in functions_in_source(path.read_text(encoding="utf-8", errors="replace"), module, package):
                out.setdefault(fn.qualname, fn)
    return list(out.values())
