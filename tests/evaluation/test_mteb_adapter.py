"""mteb's own evaluators, run through our adapter on our eval files, agree with our metrics.

No download: each task is one of our files wrapped by ``to_mteb_task`` (its ``load_data`` reads the file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mteb")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import mteb  # noqa: E402

from promptembedder.data import load_eval_task  # noqa: E402
from promptembedder.evaluation import EvalOptions, evaluate_task  # noqa: E402
from promptembedder.evaluation.mteb_adapter import MTEBEncoder, to_mteb_task  # noqa: E402

VOCAB = {
    "animals": "cat dog bird fish tree river run walk eat".split(),
    "money": "bank money price stock stocks market fell rose loan".split(),
    "music": "guitar piano song music play plays played band sing".split(),
}
NOISE = "the a of and to in is for on with big small old new good bad".split()


def _text(rng: np.random.Generator, topic: str, n: int = 4) -> str:
    words = list(rng.choice(VOCAB[topic], size=n - 1)) + list(rng.choice(NOISE, size=2))
    rng.shuffle(words)
    return " ".join(words)


def _records(task_type: str, rng: np.random.Generator) -> list[dict]:
    topics = list(VOCAB)
    if task_type == "retrieval":
        recs = [{"kind": "doc", "id": f"d{i:02d}", "text": _text(rng, topics[i % 3])} for i in range(30)]
        for q in range(9):
            recs.append({"kind": "query", "id": f"q{q}", "text": _text(rng, topics[q % 3], 3)})
            for j, d in enumerate(rng.choice(np.arange(q % 3, 30, 3), size=3, replace=False)):
                recs.append({"kind": "qrel", "query_id": f"q{q}", "doc_id": f"d{d:02d}", "score": 2 if j == 0 else 1})
        return recs
    if task_type == "reranking":
        return [
            {
                "kind": "sample",
                "query": _text(rng, topics[i % 3], 3),
                "positive": [_text(rng, topics[i % 3]) for _ in range(2)],
                "negative": [_text(rng, topics[(i + 1 + j) % 3]) for j in range(4)],
            }
            for i in range(8)
        ]
    if task_type in ("sts", "pair_classification"):
        recs = []
        for i in range(24):
            same = i % 2 == 0
            a, b = topics[i % 3], topics[i % 3] if same else topics[(i + 1) % 3]
            target = (
                {"score": float(rng.uniform(2.5, 5) if same else rng.uniform(0, 2.5))}
                if task_type == "sts"
                else {"label": int(same)}
            )
            recs.append({"kind": "pair", "text1": _text(rng, a), "text2": _text(rng, b), **target})
        return recs
    if task_type == "classification":
        return [
            {
                "kind": "item",
                "text": _text(rng, topics[i % 3]),
                "label": topics[i % 3],
                "split": "train" if i < 48 else "test",
            }
            for i in range(78)
        ]
    return [{"kind": "item", "text": _text(rng, topics[i % 3]), "label": topics[i % 3]} for i in range(36)]


TASK_TYPES = ["retrieval", "reranking", "sts", "classification", "clustering", "pair_classification"]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_mteb_agrees_with_our_metrics(task_type: str, tmp_path: Path, fake_encoder, write_eval) -> None:
    rng = np.random.default_rng(TASK_TYPES.index(task_type))
    path = write_eval(
        tmp_path / f"agree-{task_type}.jsonl",
        task_type,
        _records(task_type, rng),
        instruction=f"Instruction for {task_type}",
    )
    task = load_eval_task(path)

    # clustering: mteb's (legacy) evaluator runs k-means once, with seed 42; ours averages seeds from 42 up
    ours = evaluate_task(fake_encoder(noise=1.5), task, options=EvalOptions(clustering_seeds=1))
    assert 0.05 < ours.main_score < 0.999  # a real test: neither trivial nor broken

    seen = fake_encoder(noise=1.5)
    result = mteb.evaluate(MTEBEncoder(seen), to_mteb_task(task), cache=None, show_progress_bar=False)
    theirs = result.task_results[0].get_score()
    assert theirs == pytest.approx(ours.main_score, abs=1e-4)
    # the adapter passed the task's instruction through, and documents went to the document side
    assert set(seen.instructions) == {task.instruction}
    assert (seen.calls["document"] > 0) == (task_type in ("retrieval", "reranking"))


def test_adapter_is_an_mteb_encoder(fake_encoder) -> None:
    from mteb.models import EncoderProtocol, SearchProtocol

    adapter = MTEBEncoder(fake_encoder(name="fake model"), instructions={"SomeTask": "Do it"})
    assert isinstance(adapter, EncoderProtocol) and not isinstance(adapter, SearchProtocol)
    assert adapter.mteb_model_meta.name == "promptembedder/fake-model"


# --------------------------------------------------------------------------- ModelMeta and mteb's own tasks

STS_PAIRS = [
    ("cat dog bird", "cat dog fish", 4.8),
    ("bank money price", "bank money stock", 4.5),
    ("guitar piano song", "guitar piano music", 4.2),
    ("cat tree river", "cat tree walk", 3.9),
    ("stock market fell", "stock market rose", 3.1),
    ("song band sing", "song music play", 2.9),
    ("dog run walk", "money loan bank", 1.2),
    ("piano play band", "river tree fish", 0.8),
    ("price stocks fell", "bird eat walk", 0.5),
    ("fish river eat", "guitar sing played", 0.2),
]


def _cache_sts_benchmark(cache: Path) -> None:
    """What an earlier online ``load_dataset("mteb/stsbenchmark-sts")`` leaves in the datasets cache."""
    from datasets import Dataset
    from datasets.packaged_modules.parquet.parquet import Parquet

    source = cache.parent / "stsbenchmark-test.parquet"
    cols = {"sentence1": [a for a, _, _ in STS_PAIRS], "sentence2": [b for _, b, _ in STS_PAIRS]}
    Dataset.from_dict({**cols, "score": [s for _, _, s in STS_PAIRS]}).to_parquet(str(source))
    revision = mteb.get_task("STSBenchmark").metadata.dataset["revision"]
    builder = Parquet(
        cache_dir=str(cache), dataset_name="stsbenchmark-sts", data_files={"test": str(source)}, hash=revision
    )
    builder.download_and_prepare()
    # The cache's layout for a hub dataset: NAMESPACE___NAME/CONFIG/VERSION/REVISION
    os.replace(cache / "stsbenchmark-sts", cache / "mteb___stsbenchmark-sts")
    config = next((cache / "mteb___stsbenchmark-sts").glob("default*"))
    os.replace(config, config.with_name("default"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    import datasets

    cache = tmp_path / "hf-datasets"
    cache.mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def test_mteb_task_classes_run_by_name_on_cached_data_and_agree_with_our_metrics(hf_cache, fake_encoder) -> None:
    from promptembedder.evaluation.metrics import sts_scores
    from promptembedder.evaluation.mteb_adapter import MTEBDataError, run_mteb_tasks

    with pytest.raises(MTEBDataError, match="not in the local Hugging Face cache"):
        run_mteb_tasks(fake_encoder(noise=1.0), ["STSBenchmark"])
    _cache_sts_benchmark(hf_cache)
    seen = fake_encoder(noise=1.0)
    scores = run_mteb_tasks(seen, ["STSBenchmark"])["STSBenchmark"]
    assert scores["task_type"] == "STS" and scores["metric"] == "cosine_spearman"
    (instruction,) = set(seen.instructions)  # mteb's default prompt for the task type
    mine = fake_encoder(noise=1.0)
    a = mine.encode_queries([p[0] for p in STS_PAIRS], instruction)
    b = mine.encode_queries([p[1] for p in STS_PAIRS], instruction)
    ours = sts_scores(a, b, [p[2] for p in STS_PAIRS])["cosine_spearman"]
    assert 0.1 < ours < 0.999
    assert scores["main_score"] == pytest.approx(ours, abs=1e-6)
    with pytest.raises(MTEBDataError, match="unknown mteb task 'NoSuchTask'"):
        run_mteb_tasks(seen, ["NoSuchTask"])


def test_model_meta_is_filled_from_the_model() -> None:
    from promptembedder.evaluation.baselines import PromptEmbedderEncoder
    from promptembedder.evaluation.mteb_adapter import model_meta

    from tiny import tiny_embedder

    model = tiny_embedder("gemma")
    meta = MTEBEncoder(PromptEmbedderEncoder(model, "tiny")).mteb_model_meta
    params = {id(p): p for p in model.parameters()}.values()
    assert meta.n_parameters == sum(p.numel() for p in params)
    assert meta.memory_usage_mb == pytest.approx(sum(p.numel() * 4 for p in params) / 2**20, abs=0.1)
    assert meta.embed_dim == 48 and meta.max_tokens == 64
    assert meta.open_weights and meta.use_instructions and meta.revision == model.fingerprint()
    assert meta.license in (None, "not specified")  # tiny models: no licence is claimed for them
    model.config.prompting_model, model.config.embedding_model = "smollm2-135m", "gemma3-270m"
    meta = model_meta(PromptEmbedderEncoder(model, "tiny"), training_datasets={"wordnet_word_gloss"})
    assert meta.license == "multiple" and meta.training_datasets == {"wordnet_word_gloss"}
    model.config.embedding_model = "minilm-l6"
    assert model_meta(PromptEmbedderEncoder(model, "tiny")).license == "apache-2.0"


def test_eval_cli_runs_mteb_tasks_and_refuses_what_it_cannot_run(hf_cache, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from promptembedder import PromptEmbedder
    from promptembedder.cli import app

    from tiny import save_tiny_pair

    prompting, embedding = save_tiny_pair(tmp_path, kind="llama")
    model = PromptEmbedder.from_models(prompting, embedding, num_soft_tokens=3, device="cpu", max_length=64)
    folder = str(model.save_pretrained(tmp_path / "run" / "model"))
    # as a training run leaves it: RUN/config.json names the training files, RUN/model is the model
    (tmp_path / "run" / "config.json").write_text(
        json.dumps({"model": {}, "data": {"train_files": ["x/animals.jsonl"]}})
    )
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    runner = CliRunner()
    missing = runner.invoke(app, ["eval", "-m", folder, "--mteb", "STSBenchmark", "-o", str(tmp_path / "r.json")])
    assert missing.exit_code == 2 and "not in the local Hugging Face cache" in missing.output
    assert "Traceback" not in missing.output
    unknown = runner.invoke(app, ["eval", "-m", folder, "--mteb", "NoSuchTask", "-o", str(tmp_path / "r.json")])
    assert unknown.exit_code == 2 and "unknown mteb task 'NoSuchTask'" in unknown.output

    _cache_sts_benchmark(hf_cache)
    out = tmp_path / "r.json"
    done = runner.invoke(app, ["eval", "-m", folder, "--mteb", "STSBenchmark", "-o", str(out), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    results = json.loads(out.read_text())
    (entry,) = results["models"]
    score = entry["tasks"]["STSBenchmark"]["main_score"]
    assert -1 <= score <= 1 and entry["model_meta"]["embed_dim"] == 48
    assert entry["model_meta"]["training_datasets"] == ["animals"]
    assert f"{100 * score:.2f}" in out.with_suffix(".md").read_text()
