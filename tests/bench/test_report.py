from promptembedder.bench.report import add_ratios, markdown_table, write_report


def fake(name, s, mem, params, quality, status="ok"):
    return {
        "variant": name,
        "description": name,
        "status": status,
        "steps": 10,
        "s_per_step": s,
        "tokens_per_s": 100 / s,
        "peak_memory_bytes": mem,
        "trainable_params": params,
        "quality": [{"step": 0, "average": 0.1}, {"step": 10, "average": quality}],
        "device": "cpu",
    }


def test_ratios_are_to_lora_of_the_same_run_and_failures_are_rows(tmp_path):
    results = {
        "steps": 10,
        "warmup": 2,
        "variants": [
            fake("lora", 2.0, 4 * 2**30, 1000, 0.5),
            fake("pe-cached", 0.5, 2 * 2**30, 2000, 0.49),
            {"variant": "pe-prompted", "status": "oom", "error": "CUDA out of memory"},
        ],
    }
    add_ratios(results)
    r = results["variants"][1]["vs_lora"]
    assert r["speedup"] == 4.0 and r["memory"] == 0.5 and r["trainable_params"] == 2.0
    assert abs(r["quality"] - 0.98) < 1e-9 and abs(r["tokens_per_s"] - 4.0) < 1e-9
    assert r["speedup_documents_counted"] == 4.0  # no cache build: nothing more to count
    table = markdown_table(results)
    assert "| pe-cached | 0.500 s | 4.00× | 4.00× |" in table and "**oom**" in table and "98%" in table
    write_report(results, tmp_path / "bench.json")
    assert (tmp_path / "bench.md").is_file()
    assert (tmp_path / "bench-quality.png").is_file() and (tmp_path / "bench-speed-memory.png").is_file()


def test_no_lora_no_ratios():
    results = {"steps": 10, "warmup": 2, "variants": [fake("pe-cached", 0.5, 1, 1, 0.4)]}
    add_ratios(results)
    assert "vs_lora" not in results["variants"][0]


def test_the_documents_cache_build_is_counted_per_step_it_served():
    """LoRA reads every document through its training backbone; a cached variant embeds them once up front.
    Where documents never repeat, that build is a cost of every step: 6 s over 12 steps adds 0.5 s/step."""
    cached = {**fake("pe-cached", 0.5, 1, 1, 0.4), "precompute_documents_s": 6.0, "precompute_documents_steps": 12}
    results = {"steps": 10, "warmup": 2, "variants": [fake("lora", 2.0, 4, 1, 0.5), cached]}
    add_ratios(results)
    r = results["variants"][1]["vs_lora"]
    assert r["speedup"] == 4.0 and r["speedup_documents_counted"] == 2.0
    assert "| pe-cached | 0.500 s | 4.00× | 2.00× |" in markdown_table(results)
