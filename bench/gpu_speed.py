"""Speed and memory of LoRA, prompt tuning and PromptEmbedder at real model shapes, on one GPU, in minutes.

    python bench/gpu_speed.py                      # one H100: ~7 minutes, prints the table last
    python bench/gpu_speed.py --tiny               # the same code path with tiny shapes on a CPU (CI)

Speed and memory depend on shapes, not on weights, so the models are built from their architectures' real
configs with random weights, in bf16, directly on the GPU (``random:FOLDER`` model names): Qwen2.5-0.5B as
the Prompting LLM; Mistral-7B and Qwen2.5-1.5B as Embedding LLMs. A word-level tokenizer over the real
vocabulary size and synthetic texts cut at exactly 48 (query) and 256 (document) tokens give fixed lengths.

Each group (Embedding LLM, gradient checkpointing on/off, batch) runs every variant through
``promptembedder bench``'s runner, each variant in its own process: median s/step after warm-up, tokens/s,
peak CUDA allocation, trainable parameters, and ratios to LoRA measured in the same group. Groups run in
order of importance under one time budget (default 450 s); what does not fit is marked skipped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shape:
    family: str  # qwen2 | mistral
    kwargs: dict
    bos: bool  # the tokenizer puts a BOS first (Mistral), or not (Qwen)
    padding_side: str


SHAPES = {
    # Real sizes (from the published configs); weights random.
    "qwen2.5-0.5b": Shape(
        "qwen2",
        dict(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        ),
        False,
        "right",
    ),
    "qwen2.5-1.5b": Shape(
        "qwen2",
        dict(
            vocab_size=151936,
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        ),
        False,
        "right",
    ),
    "mistral-7b": Shape(
        "mistral",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=32768,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        ),
        True,
        "left",
    ),
}

TINY = {
    "qwen2.5-0.5b": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=600),
    "qwen2.5-1.5b": dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=600),
    "mistral-7b": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=500),
}  # fmt: skip


@dataclass(frozen=True)
class Group:
    name: str
    embedding: str
    gradient_checkpointing: bool
    batch_size: int
    variants: tuple[str, ...]
    ratios_to: str | None = None  # a group with the same shapes whose LoRA these variants are compared with


ALL = ("lora", "pe-cached", "prompt-tuning", "pe-prompted", "pe-plain", "pe-cached-lora", "pe-cached-no-kv")
# In order of importance: the 7B comparison, its CUDA-graph variants (compared with that group's LoRA),
# then gradient checkpointing at batch 32, then a 1.5B Embedding LLM.
GROUPS = (
    Group("mistral-7b", "mistral-7b", False, 16, ALL),
    Group("mistral-7b-graphs", "mistral-7b", False, 16, ("pe-cached-graphs", "pe-cached-compiled"), "mistral-7b"),
    Group("mistral-7b-gc", "mistral-7b", True, 32, ("lora", "pe-cached", "prompt-tuning", "pe-prompted")),
    Group("qwen2.5-1.5b", "qwen2.5-1.5b", False, 16, ("lora", "pe-cached", "prompt-tuning", "pe-prompted")),
)


def write_model_folder(folder: Path, name: str, tiny: bool) -> str:
    """config.json and a word-level tokenizer over the model's vocabulary; returns the ``random:`` name."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MistralConfig, PreTrainedTokenizerFast, Qwen2Config

    shape = SHAPES[name]
    kwargs = {**shape.kwargs, **(TINY[name] if tiny else {})}
    config_class = {"qwen2": Qwen2Config, "mistral": MistralConfig}[shape.family]
    vocab_size = kwargs["vocab_size"]
    config = config_class(**kwargs, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{f"w{i}": i for i in range(4, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = dict(pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
    if shape.bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
        specials["bos_token"] = "<s>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, padding_side=shape.padding_side, model_max_length=32768, **specials
    )
    fast.save_pretrained(folder)
    return f"random:{folder}"


def write_data(path: Path, vocab_size: int, n_tasks: int = 4, per_task: int = 160, seed: int = 0) -> None:
    """Synthetic tasks whose queries and documents are longer than 48 and 256 tokens: every text is cut to
    exactly its max length, so each step has the same shapes (what a CUDA graph needs)."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(4, vocab_size)}" for _ in range(n))

    rows = []
    for t in range(n_tasks):
        instruction = words(16)  # one instruction per task, 16 tokens
        for _ in range(per_task):
            rows.append(
                {
                    "task": f"task{t}",
                    "instruction": instruction,
                    "query": words(64),
                    "positive": words(300),
                    "negatives": [words(300)],
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU: the code path, in seconds")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all groups together")
    parser.add_argument("--steps", type=int, default=None, help="steps per variant (default 8; tiny 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 3; tiny 1)")
    parser.add_argument("--groups", default=None, help="comma-separated group names (default: all, in order)")
    parser.add_argument("--variants", default=None, help="restrict every group to these variants")
    parser.add_argument("--query-length", type=int, default=48)
    parser.add_argument("--document-length", type=int, default=256)
    parser.add_argument(
        "--profile", action="store_true", help="then torch.profiler over pe-cached at 7B shapes (phase split, launches)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/promptembedder-gpu-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu")
    args = parser.parse_args(argv)

    import torch

    from promptembedder.bench.report import add_ratios, markdown_table, write_report
    from promptembedder.bench.runner import run_bench
    from promptembedder.bench.variants import VARIANTS, Variant, parse_variants
    from promptembedder.training.config import apply_overrides

    started = time.monotonic()
    deadline = started + args.budget
    if not args.tiny and not torch.cuda.is_available():
        print("no GPU here: run with --tiny for the CPU code path", file=sys.stderr)
        return 2
    steps = args.steps or (4 if args.tiny else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    groups = [g for g in GROUPS if not args.groups or g.name in args.groups.split(",")]
    only = set(args.variants.split(",")) if args.variants else None
    work = args.work / ("tiny" if args.tiny else "real")
    names = {n: write_model_folder(work / n, n, args.tiny) for n in SHAPES}
    vocab = {n: (TINY[n] if args.tiny else SHAPES[n].kwargs)["vocab_size"] for n in SHAPES}
    command = "python bench/gpu_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sections = []
    profile_config = None
    for group in groups:
        variants = [v for v in parse_variants(list(group.variants)) if only is None or v.name in only]
        if args.tiny:  # on the CPU, compiled variants are traced (aot_eager) but neither code-generated nor graphed
            variants = [
                Variant(v.name, v.description, (*v.overrides, "speed.compile_backend=aot_eager"))
                if any(o.startswith("speed.compile") for o in v.overrides)
                else v
                for v in variants
            ]
        if not variants:
            continue
        data = work / f"data-{group.embedding}.jsonl"
        write_data(data, min(vocab["qwen2.5-0.5b"], vocab[group.embedding]))
        base = {
            "model": {
                "prompting_model": names["qwen2.5-0.5b"],
                "embedding_model": names[group.embedding],
                "alignment_init": "random",  # random weights: no vocabulary to fit W on
                "max_length": args.document_length + 16,
                "instruction_max_length": 64,
            },
            "data": {
                "train_files": [str(data)],
                "hard_negatives": 0,  # pairs: one query, one positive (the prototype's setting)
                "dev_per_task": 0,
                "max_query_length": args.query_length,
                "max_document_length": args.document_length,
            },
            "batch_size": group.batch_size if not args.tiny else 4,
            "gradient_checkpointing": group.gradient_checkpointing,
            "optim": {"warmup_steps": 0},
            "log_every": 1,
            "eval_every": 0,
        }
        if profile_config is None and "pe-cached" in group.variants:
            profile_config = apply_overrides(json.loads(json.dumps(base)), list(VARIANTS["pe-cached"].overrides))
        out = args.out / f"{group.name}.json"
        title = (
            f"{group.name}: Qwen2.5-0.5B -> {group.embedding}, batch {base['batch_size']}, "
            f"{args.query_length}/{args.document_length} tokens, gradient checkpointing "
            f"{'on' if group.gradient_checkpointing else 'off'}, bf16, random weights"
        )
        print(f"\n=== {title}", file=sys.stderr)
        results = run_bench(
            variants,
            config=base,
            steps=steps,
            warmup=warmup,
            out=out,
            command=command,
            title=title,
            deadline=deadline,
        )
        base_group = (
            next((t, r) for t, r in sections if t.startswith(group.ratios_to + ":")) if group.ratios_to else None
        )
        if base_group is not None:  # compare with LoRA measured earlier in this run at the same shapes
            merged = {**base_group[1], "variants": base_group[1]["variants"] + results["variants"]}
            add_ratios(merged)
            sections[sections.index(base_group)] = (base_group[0], merged)
            write_report(merged, args.out / f"{group.ratios_to}.json")
            (args.out / f"{group.ratios_to}.json").write_text(json.dumps(merged, indent=2) + "\n")
            continue
        sections.append((title, results))
    profile_lines = []
    if args.profile and profile_config is not None:
        profile_lines = profile(profile_config, work / "profile.json", deadline)
    lines = [f"# GPU bench ({'tiny shapes, CPU' if args.tiny else torch.cuda.get_device_name()})", ""]
    lines += [f"`{command}` — {time.monotonic() - started:.0f} s", ""]
    for title, results in sections:
        lines += [f"## {title}", "", markdown_table(results), ""]
    lines += profile_lines
    if not args.tiny:
        lines += targets(sections)
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_speed.md").write_text(text + "\n")
    print(text)  # the table last
    return 0


def profile(config: dict, out: Path, deadline: float, steps: int = 3) -> list[str]:
    """torch.profiler over a few pe-cached steps, in its own process: the phase split and launches per step."""
    import subprocess

    left = deadline - time.monotonic()
    if left < 60:
        return ["", "(profile skipped: time budget)"]
    out.parent.mkdir(parents=True, exist_ok=True)
    config_file = out.with_suffix(".yaml")
    import yaml

    config_file.write_text(yaml.safe_dump({**config, "output_dir": str(out.parent / "profile-run")}))
    cmd = [sys.executable, "-m", "promptembedder.bench.profile", str(config_file), "--steps", str(steps)]
    cmd += ["--json", str(out)]
    try:
        subprocess.run(cmd, timeout=left, check=False, stdout=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ["", "(profile stopped: time budget)"]
    if not out.is_file():
        return ["", "(profile failed)"]
    summary = json.loads(out.read_text())
    lines = ["", "## Profile of a pe-cached step (torch.profiler, per step)", ""]
    lines += ["| phase | CPU ms | device ms |", "|---|---|---|"]
    for phase, t in summary["phases"].items():
        lines.append(f"| {phase} | {t.get('cpu_ms', 0):.1f} | {t.get('device_ms', 0):.1f} |")
    lines.append(
        f"\n{summary['aten_ops_per_step']:.0f} aten ops and {summary['kernel_launches_per_step']:.0f} kernel launches "
        f"per step; wall {1000 * summary['wall_s_per_step']:.0f} ms per profiled step."
    )
    return lines


def targets(sections) -> list[str]:
    """The issue's speed and memory targets for the headline variant against LoRA at 7B shapes."""
    lines = ["## Targets (pe-cached against LoRA, same group)", ""]
    for title, results in sections:
        if "mistral-7b" not in title:
            continue
        for v in results["variants"]:
            if not v["variant"].startswith("pe-cached") or "vs_lora" not in v:
                continue
            r = v["vs_lora"]
            speed, memory = r.get("speedup"), r.get("memory")
            if speed is None or memory is None:
                continue
            lines.append(
                f"- {title.split(':')[0]} / {v['variant']}: {speed:.2f}x faster (target >= 3.7x: "
                f"{'met' if speed >= 3.7 else f'missed by {3.7 - speed:.2f}x'}); memory {100 * memory:.0f}% of "
                f"LoRA's (target <= 60%: {'met' if memory <= 0.6 else f'missed by {100 * (memory - 0.6):.0f} points'})"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
