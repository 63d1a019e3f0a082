"""The model card a saved PromptEmbedder carries: README.md with the Hugging Face metadata block.

The card says what the folder is (two LLMs and W), how to load it (ours and sentence-transformers'), the
licence of each part, and, when they are at hand, the last evaluation table and the training config: a
folder with its card can be pushed to a hub as it is.

Where those come from: an evaluation report (``promptembedder eval``'s ``.md``, starting "# Evaluation:")
in the folder itself or in the run folder around it, and the Trainer's ``config.json`` of that run folder
(a Trainer writes ``RUN/config.json`` and saves the model to ``RUN/model``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

from promptembedder.config import PromptEmbedderConfig

CARD_NAME = "README.md"
PROJECT_LICENCE = "Apache-2.0"
_EVAL_HEADER = "# Evaluation:"
UNKNOWN_LICENCE = "see the model's own card"  # a folder or hub id, not one of the registry's known models
# SPDX-ish names as the registry writes them -> the Hugging Face licence ids.
_HF_LICENCES = {"apache-2.0": "apache-2.0", "apache-2.0 (upstream)": "apache-2.0", "gemma terms of use": "gemma"}


def part_licences(config: PromptEmbedderConfig) -> dict[str, str]:
    """Licence of each part: the two LLMs (from the model registry, when they are known models) and W."""
    from promptembedder.models import KNOWN_MODELS

    def licence(name: str) -> str:
        known = KNOWN_MODELS.get(name)
        return known.licence if known is not None else UNKNOWN_LICENCE

    return {
        f"Prompting LLM ({config.prompting_model})": licence(config.prompting_model),
        f"Embedding LLM ({config.embedding_model})": licence(config.embedding_model),
        "alignment map W and the trained Prompting LLM weights (this project)": PROJECT_LICENCE,
    }


def hub_licence(licences: list[str]) -> tuple[str, str | None]:
    ids = {_HF_LICENCES.get(lic.lower(), "other") for lic in licences}
    if len(ids) == 1 and "other" not in ids:
        return ids.pop(), None
    return "other", "mixed"  # parts under different terms: the card's licence table names each


def find_eval_table(folder: Path) -> Path | None:
    """The newest evaluation report in the folder, or in the training run folder around it (one with a
    metrics.jsonl: any other parent may hold reports of other models)."""
    found = []
    places = [folder] + ([folder.parent] if (folder.parent / "metrics.jsonl").is_file() else [])
    for place in places:
        for path in place.glob("*.md") if place.is_dir() else []:
            if path.name == CARD_NAME:
                continue
            try:
                if path.read_text(encoding="utf-8").startswith(_EVAL_HEADER):
                    found.append(path)
            except (OSError, UnicodeDecodeError):
                continue
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def find_training_config(folder: Path) -> dict[str, Any] | None:
    """The Trainer's config of the run this folder was saved by, if the folder sits in one."""
    config = folder.parent / "config.json"
    if not ((folder.parent / "metrics.jsonl").is_file() and config.is_file()):
        return None
    try:
        data = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "model" in data else None


def training_tasks(training: dict[str, Any] | None) -> list[str]:
    """Task names (file stems) of a training config's train_files, for a card's or ModelMeta's datasets."""
    if not training:
        return []
    names = []
    for entry in training.get("data", {}).get("train_files", []):
        path = Path(entry)
        stems = sorted(p.stem for p in path.glob("*.jsonl")) if path.is_dir() else [path.stem]
        names.extend(stems)
    return sorted(set(names))


def model_card(
    config: PromptEmbedderConfig,
    *,
    embedding_dim: int,
    eval_table: str | None = None,
    training: dict[str, Any] | None = None,
) -> str:
    """README.md text: the metadata block, then the card."""
    licences = part_licences(config)
    licence, licence_name = hub_licence(list(licences.values()))
    datasets = training_tasks(training)
    data = ModelCardData(
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=["promptembedder", "sentence-transformers", "feature-extraction", "soft-prompt", "text-embeddings"],
        base_model=[config.prompting_model, config.embedding_model],
        datasets=datasets or None,
        license=licence,
        license_name=licence_name,
    )
    example = next(iter(config.prompts), None)
    prompt_arg = f'prompt_name="{example}"' if example else 'prompt="Retrieve passages that answer the question"'
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        "# PromptEmbedder",
        "",
        f"An instruction-aware text embedder: a trainable Prompting LLM (`{config.prompting_model}`) reads the task "
        f"instruction and writes {config.num_soft_tokens} soft-prompt vectors, a linear alignment map W carries them "
        f"into the input space of a frozen Embedding LLM (`{config.embedding_model}`), which reads "
        f"[soft prompt; text] and pools ({config.pooling.value}) one {embedding_dim}-dimensional vector.",
        "",
        "The frozen Embedding LLM is not in this folder: it is recorded by name and fingerprint and loaded through "
        "`promptembedder.models` (`promptembedder models prepare NAME`).",
        "",
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("PATH_TO_THIS_FOLDER", trust_remote_code=True)',
        f'vectors = model.encode(["a text to embed"], {prompt_arg})',
        "```",
        "",
        "or with the library itself:",
        "",
        "```python",
        "from promptembedder import PromptEmbedder",
        "",
        'model = PromptEmbedder.from_pretrained("PATH_TO_THIS_FOLDER")',
        'vectors = model.encode(["a text to embed"], instruction="Retrieve passages that answer the question")',
        "```",
        "",
    ]
    if config.prompts:
        lines += ["Saved tasks (`prompt_name` -> instruction):", ""]
        lines += [f"- `{name}`: {instruction}" for name, instruction in sorted(config.prompts.items())]
        lines.append("")
    lines += ["## Licences", "", "| part | licence |", "|---|---|"]
    lines += [f"| {part} | {lic} |" for part, lic in licences.items()]
    lines += ["", "## Configuration", "", "```json", config.to_json(), "```", ""]
    if eval_table:
        table = eval_table.strip().split("\n", 1)
        lines += ["## Evaluation", "", table[1].strip() if len(table) > 1 else table[0], ""]
    if training:
        lines += ["## Training", ""]
        if datasets:
            lines += ["Training tasks: " + ", ".join(f"`{d}`" for d in datasets), ""]
        lines += ["```json", json.dumps(training, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
