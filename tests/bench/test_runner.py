"""The bench end to end on tiny models: each variant in its own process, timed, measured, scored."""

import json
import sys
from pathlib import Path

from promptembedder.bench.runner import QualitySettings, run_bench
from promptembedder.bench.variants import parse_variants
from promptembedder.data import sample_dir

from tiny import save_tiny_pair, write_tiny_train_files


def test_two_variants_side_by_side(tmp_path):
    prompting, embedding = save_tiny_pair(tmp_path, kind="gemma")
    files = write_tiny_train_files(tmp_path)
    config = {
        "model": {
            "prompting_model": prompting,
            "embedding_model": embedding,
            "max_length": 32,
            "num_soft_tokens": 3,
            "alignment_init": "random",
        },
        "data": {"train_files": files, "dev_per_task": 0, "max_query_length": 16, "max_document_length": 16},
        "batch_size": 4,
    }
    quality = QualitySettings(
        tasks=["wordnet_example_gloss"],
        at_steps=[0, 3],
        limit=4,
        max_corpus=8,
        max_chars=64,
        data_dir=str(sample_dir()),
        cache_dir=str(tmp_path / "cache"),
    )
    out = tmp_path / "bench" / "bench.json"
    results = run_bench(
        parse_variants("lora,pe-cached"), config=config, steps=3, warmup=1, out=out, quality=quality, threads=1
    )
    lora, pe = results["variants"]
    assert lora["status"] == "ok" and pe["status"] == "ok", (lora.get("traceback"), pe.get("traceback"))
    for v in (lora, pe):
        assert len(v["step_s"]) == 3 and v["s_per_step"] > 0 and v["tokens_per_s"] > 0
        assert v["peak_memory_bytes"] > 0 and v["trainable_params"] > 0 and v["threads"] == 1
        assert [q["step"] for q in v["quality"]] == [0, 3]
        assert v["config"]["steps"] == 3
    assert pe["precompute_documents_s"] is not None and lora["precompute_documents_s"] is None
    assert pe["config"]["speed"]["precompute_documents"] and pe["config"]["model"]["document_prompt"] == "plain"
    assert lora["config"]["method"] == "lora"
    assert pe["vs_lora"]["speedup"] > 0 and "quality" in pe["vs_lora"]
    assert json.loads(out.read_text())["variants"][1]["variant"] == "pe-cached"
    assert out.with_suffix(".md").is_file() and out.with_name("bench-quality.png").is_file()
    assert not (tmp_path / "bench" / "bench-runs" / "lora" / "model").exists()  # measured steps only, no save


def test_gpu_script_tiny_mode_runs_and_prints_the_table_last(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parents[2] / "bench" / "gpu_speed.py"
    cmd = [
        sys.executable,
        str(script),
        "--tiny",
        "--groups",
        "mistral-7b,mistral-7b-graphs",
        "--variants",
        "lora,pe-cached,pe-cached-graphs",
        "--steps",
        "3",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    tail = result.stdout.strip().splitlines()
    assert tail[0].startswith("# GPU bench (tiny shapes, CPU)")
    assert any(line.startswith("| pe-cached-graphs |") and "×" in line for line in tail), result.stdout
    assert tail[-1].startswith("| pe-cached-graphs |")  # the table is the last thing printed
    merged = json.loads((tmp_path / "out" / "mistral-7b.json").read_text())
    assert [v["variant"] for v in merged["variants"]] == ["lora", "pe-cached", "pe-cached-graphs"]
    assert all(v["status"] == "ok" for v in merged["variants"]), [v.get("error") for v in merged["variants"]]
    assert merged["variants"][1]["config"]["model"]["embedding_model"].startswith("random:")
