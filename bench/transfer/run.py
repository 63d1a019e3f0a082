"""Transfer experiment: train only a new W for a new Embedding LLM vs train a PromptEmbedder from scratch.

    flock /tmp/promptembedder-cpu.lock python bench/transfer/run.py \
        --targets smollm2-135m minilm-l6 --steps 40 --out bench/transfer/results

1. Source: a PromptEmbedder (smollm2-135m -> gemma3-270m); ``--source DIR`` reuses a trained one, otherwise a
   short one is trained with the same data settings (its run folder under ``--runs``).
2. For each target Embedding LLM, with the same data, loss, batch, schedule and number of steps:
   ``scratch`` (a fresh smollm2-135m -> target PromptEmbedder, Prompting LLM and W trained) and
   ``transfer-INIT`` (the source's Prompting LLM frozen, only a new W trained, W starting per INIT).
   Every arm's held-out score (the Trainer's dev slice: mean MRR@10, the same examples for every arm and never
   trained on by the source either) is measured before the first step and every ``--eval-every`` steps.
3. Writes ``results.json``, ``results.md`` (table) and ``results.png`` (score vs steps) to ``--out``.

Steps to 95%: the first evaluated step whose score reaches 95% of the from-scratch arm's final score; steps to
95% of the gain: the first that reaches scratch's start plus 95% of what scratch gained over it (defined even
when an untrained model already scores within 5% of scratch's end). ``--arm`` runs one arm per process, so two
arms train side by side; a last run with ``--reuse`` writes the table. Seconds per step: the training loop's
wall time without the dev evaluations inside it, divided by the steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from promptembedder.training import Trainer, load_config
from promptembedder.training import trainer as trainer_module
from promptembedder.transfer import resolve_source

SCORE = "dev/mean_mrr@10"
_read_data = trainer_module.load_training_data
_data: dict[str, tuple] = {}


def load_training_data(config):
    """The Trainer's data loading, read once: every arm reads the same files (the built data takes ~20 s)."""
    key = json.dumps([config.data.train_files, config.data.dev_per_task, config.seed, config.data.split_seed])
    if key not in _data:
        _data[key] = _read_data(config)
    return _data[key]


trainer_module.load_training_data = load_training_data


class BenchTrainer(Trainer):
    """The Trainer, plus a dev evaluation of the model as built (step 0), timings and the trainable count.

    The step-0 evaluation draws no random numbers and leaves the model as it found it, so the run that
    follows is the same as without it.
    """

    def __init__(self, *args, step0: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_step0 = step0
        self.eval_seconds: list[float] = []
        self.step0: dict[str, float] = {}
        self.trainable = 0

    def evaluate_dev(self, model, dev):
        tic = time.perf_counter()
        scores = super().evaluate_dev(model, dev)
        self.eval_seconds.append(time.perf_counter() - tic)
        return scores

    def _build_model(self):
        model = super()._build_model()
        if self.with_step0:
            _, dev = load_training_data(self.config)
            self.step0 = self.evaluate_dev(model, dev)
        self.eval_seconds.clear()  # only the evaluations inside the training loop are subtracted below
        return model

    def trainable_parameters(self, model):
        params = super().trainable_parameters(model)
        self.trainable = sum(p.numel() for p in params.values())
        return params


def run_arm(overrides: list[str], label: str, step0: bool = True, reuse: bool = False) -> dict:
    config = load_config(None, overrides)
    done = Path(config.output_dir) / "arm.json"
    if reuse and done.is_file():  # an arm an interrupted run of this script finished: its recorded result
        return json.loads(done.read_text())
    trainer = BenchTrainer(config, step0=step0)
    tic = time.perf_counter()
    trainer.run()
    wall = time.perf_counter() - tic
    records = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    curve = {0: trainer.step0[SCORE]} if step0 else {}
    curve.update({r["step"]: r[SCORE] for r in records if SCORE in r})
    last = [r for r in records if "steps_per_s" in r][-1]
    in_loop_evals = sum(trainer.eval_seconds[:-1])  # the last one runs after the loop
    seconds_per_step = (last["step"] / last["steps_per_s"] - in_loop_evals) / last["step"]
    result = {
        "label": label,
        "curve": {str(k): v for k, v in sorted(curve.items())},
        "final_loss": float(np.mean([r["loss"] for r in records if "loss" in r][-5:])),
        "trainable_parameters": trainer.trainable,
        "seconds_per_step": seconds_per_step,
        "wall_seconds": wall,
        "output_dir": config.output_dir,
    }
    print(json.dumps(result), flush=True)
    done.write_text(json.dumps(result, indent=2))
    return result


def score_steps(arms: dict[str, dict]) -> None:
    """Each arm's steps to 95% of scratch's final score, and to 95% of the *gain* scratch made over its own start
    (start + 0.95 (final - start)): the second stays defined when an untrained model already scores within 5% of
    what scratch ends at, as a frozen encoder does."""
    curve = arms["scratch"]["curve"]
    final, start = last_score(curve), curve["0"]
    for arm in arms.values():
        arm["steps_to_95"] = steps_to(arm["curve"], 0.95 * final)
        arm["steps_to_95_gain"] = steps_to(arm["curve"], start + 0.95 * (final - start)) if final > start else None


def last_score(curve: dict[str, float]) -> float:
    """The score of an arm's last evaluation (an arm may run fewer steps than the others, or stop at a plateau)."""
    return curve[max(curve, key=int)]


def steps_to(curve: dict[str, float], threshold: float) -> int | None:
    for step, score in sorted(((int(k), v) for k, v in curve.items())):
        if score >= threshold:
            return step
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="A trained PromptEmbedder (smollm2-135m -> gemma3-270m) or its run folder.")
    parser.add_argument("--source-steps", type=int, default=60, help="Steps of the source, if trained here.")
    parser.add_argument("--prompting-model", default="smollm2-135m", help="The Prompting LLM of every arm.")
    parser.add_argument("--source-embedding", default="gemma3-270m", help="The source's Embedding LLM.")
    parser.add_argument("--data", nargs="*", default=[], help="Training files (default: the data sample).")
    parser.add_argument("--targets", nargs="*", default=["smollm2-135m", "minilm-l6"], help="None: the source only.")
    parser.add_argument("--inits", nargs="+", default=["vocab", "compose"], help="Transfer arms (W's start).")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument(
        "--dev-per-task", type=int, default=16, help="Dev examples per task (<= the source's, so held out from it)."
    )
    parser.add_argument("--pooling", nargs="*", default=["minilm-l6=mean"], help="TARGET=POOLING (default last).")
    parser.add_argument("--runs", type=Path, default=Path("runs/transfer-bench"), help="Run folders (large).")
    parser.add_argument("--out", type=Path, default=Path("bench/transfer/results"))
    parser.add_argument("--keep-checkpoints", action="store_true", help="Keep the arms' checkpoints (GBs).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every arm.")
    parser.add_argument(
        "--scratch-set",
        action="append",
        default=[],
        help="KEY=VALUE for the scratch arms only (what a frozen Prompting LLM cannot take, e.g. entropy_floor=2.0).",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE[;KEY=VALUE...]: for each init also an arm transfer-INIT+NAME with these settings "
        "(e.g. 'deep:model.deep_prompt=true' gives the new W per-layer prompts; only W still trains).",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="Keep the result of an arm whose run folder already holds one (arm.json)."
    )
    parser.add_argument(
        "--arm",
        action="append",
        default=[],
        help="Train only this arm (scratch, transfer-INIT; repeatable), so the arms of one target can run in two "
        "processes side by side; a last run with --reuse and no --arm writes the table from their arm.json files. "
        "--arm scratch alone needs no --source (it never reads one), so it can start while the source trains.",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="Add these targets to --out's results.json (same source, steps and eval grid) instead of replacing it.",
    )
    args = parser.parse_args()
    variants = parse_variants(args.variant)

    # One data set-up for every run, the source's included, so the dev slice is held out from all of them.
    common = [
        "batch_size=8",
        f"data.dev_per_task={args.dev_per_task}",
        "data.max_query_length=48",
        "data.max_document_length=64",
        "model.max_length=96",
        "optim.warmup_steps=5",
        "log_every=5",
        "keep_checkpoints=1",
        "seed=0",
        f"data.train_files=[{', '.join(args.data)}]",
        *args.overrides,
    ]
    started = time.perf_counter()
    source = args.source
    if source is not None:
        source = str(resolve_source(source))  # fails here, before any training, if there is no trained model
    only_scratch = bool(args.arm) and set(args.arm) == {"scratch"}  # scratch never reads the source
    if source is None and not only_scratch:
        source_dir = args.runs / "source"
        if not (source_dir / "model").is_dir():
            run_arm(
                [
                    *common,
                    f"model.prompting_model={args.prompting_model}",
                    f"model.embedding_model={args.source_embedding}",
                    f"steps={args.source_steps}",
                    "eval_every=0",
                    f"checkpoint_every={args.source_steps}",
                    f"output_dir={source_dir}",
                ],
                "source",
                step0=False,
            )
        source = str(source_dir / "model")
    pooling = dict(item.split("=", 1) for item in args.pooling)
    results: dict = {
        "command": "python bench/transfer/run.py " + " ".join(sys.argv[1:]),
        "source": source,
        "source_embedding": args.source_embedding,
        "targets": {},
        "steps": args.steps,
        "eval_every": args.eval_every,
    }
    if args.merge:
        results = merge_previous(results, args.out / "results.json")
    for target in args.targets:
        arm_settings = [
            *common,
            f"model.prompting_model={args.prompting_model}",
            f"model.embedding_model={target}",
            f"model.pooling={pooling.get(target, 'last')}",
            f"steps={args.steps}",
            f"eval_every={args.eval_every}",
            f"checkpoint_every={args.steps}",
        ]
        runs = args.runs / Path(target).name
        planned = {"scratch": [*arm_settings, *args.scratch_set, f"output_dir={runs / 'scratch'}"]}
        for init in [] if source is None else args.inits:
            for variant, extra in {"": [], **variants}.items():
                name = f"transfer-{init}" + (f"+{variant}" if variant else "")
                planned[name] = [
                    *arm_settings,
                    *extra,
                    f"transfer.source={source}",
                    f"transfer.init={init}",
                    f"output_dir={runs / name}",
                ]
        arms = {
            name: run_arm(overrides, name, reuse=args.reuse)
            for name, overrides in planned.items()
            if not args.arm or name in args.arm
        }
        if not args.keep_checkpoints:
            for arm in arms.values():
                shutil.rmtree(Path(arm["output_dir"]) / "checkpoints", ignore_errors=True)
        if args.arm:  # part of a target: the run with --reuse and no --arm writes its table
            continue
        score_steps(arms)
        results["targets"][target] = arms
        write_report(results, args.out)
    if "commands" in results:
        results["wall_seconds_by_command"].append(time.perf_counter() - started)
    else:
        results["wall_seconds"] = time.perf_counter() - started
    results["machine"] = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    write_report(results, args.out)


def parse_variants(items: list[str]) -> dict[str, list[str]]:
    """``NAME:KEY=VALUE;KEY=VALUE`` -> {NAME: [KEY=VALUE, ...]}; a clear exit on a malformed one."""
    variants: dict[str, list[str]] = {}
    for item in items:
        name, _, sets = item.partition(":")
        pairs = [pair.strip() for pair in sets.split(";") if pair.strip()]
        if (
            not name
            or not name.replace("-", "").replace("_", "").isalnum()
            or not pairs
            or any("=" not in pair for pair in pairs)
        ):
            raise SystemExit(
                f"--variant {item!r}: expected NAME:KEY=VALUE[;KEY=VALUE...], e.g. deep:model.deep_prompt=true"
            )
        if name in variants:
            raise SystemExit(f"--variant {name!r} given twice; give each variant its own name")
        variants[name] = pairs
    return variants


def merge_previous(results: dict, path: Path) -> dict:
    """Keep the targets an earlier run recorded, when it measured the same thing; refuse otherwise."""
    if not path.is_file():
        return results
    previous = json.loads(path.read_text())
    for key in ("source", "source_embedding", "steps", "eval_every"):
        if previous.get(key) != results[key]:
            raise SystemExit(
                f"--merge: {path} has {key}={previous.get(key)!r}, this run {results[key]!r}; "
                "rerun with the same settings or write to another --out"
            )
    commands = previous.get("commands") or [previous["command"]]
    merged = {**previous, "targets": dict(previous["targets"]), "commands": [*commands, results["command"]]}
    merged.pop("command", None)
    merged["wall_seconds_by_command"] = previous.get("wall_seconds_by_command") or [merged.pop("wall_seconds", None)]
    return merged


def ratio_text(scratch: int | None, transfer: int | None, eval_every: int) -> str:
    if scratch is None or transfer is None:
        return "n/a (95% not reached)"
    if transfer == 0:
        # Reached before any training: the ratio is only bounded by the evaluation grid.
        return f">= {scratch / eval_every:.1f}x (at step 0)" if scratch else "undefined (both at step 0)"
    return f"{scratch / transfer:.1f}x"


def wall_text(scratch: dict, arm: dict) -> tuple[str, str]:
    """Training minutes to 95% of scratch's final score (steps to it x seconds a step, evaluations left out)
    and scratch's minutes over the arm's: issue 15's wall-time ratio."""
    if arm["steps_to_95"] is None:
        return "not reached", "n/a (95% not reached)"
    minutes = arm["steps_to_95"] * arm["seconds_per_step"] / 60
    if arm is scratch:
        return f"{minutes:.1f}", "-"
    if scratch["steps_to_95"] is None:
        return f"{minutes:.1f}", "n/a (95% not reached)"
    if not minutes:
        return "0.0", "n/a (at step 0)"
    return f"{minutes:.1f}", f"{scratch['steps_to_95'] * scratch['seconds_per_step'] / 60 / minutes:.1f}x"


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| target | arm | score@0 | final score | steps to 95% of scratch final | speed-up vs scratch "
        "| minutes to it | wall speed-up | steps to 95% of scratch's gain | speed-up | trainable params | s/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    every = results["eval_every"]
    for target, arms in results["targets"].items():
        scratch, scratch_gain = arms["scratch"]["steps_to_95"], arms["scratch"].get("steps_to_95_gain")
        for name, arm in arms.items():
            curve, gain = arm["curve"], arm.get("steps_to_95_gain")
            ratio = "-" if name == "scratch" else ratio_text(scratch, arm["steps_to_95"], every)
            minutes, wall = wall_text(arms["scratch"], arm)
            gain_ratio = "-" if name == "scratch" or scratch_gain is None else ratio_text(scratch_gain, gain, every)
            reached = "not reached" if arm["steps_to_95"] is None else str(arm["steps_to_95"])
            gained = "n/a" if scratch_gain is None else ("not reached" if gain is None else str(gain))
            lines.append(
                f"| {target} | {name} | {curve['0']:.3f} | {last_score(curve):.3f} | {reached} | {ratio} "
                f"| {minutes} | {wall} | {gained} | {gain_ratio} | {arm['trainable_parameters']:,} "
                f"| {arm['seconds_per_step']:.2f} |"
            )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(results, out / "results.png")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = results["targets"]
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(5.5 * max(1, len(targets)), 4), squeeze=False)
    for ax, (target, arms) in zip(axes[0], targets.items(), strict=False):
        for name, arm in arms.items():
            steps = [int(k) for k in arm["curve"]]
            style = "--" if name == "scratch" else "-"
            ax.plot(steps, list(arm["curve"].values()), marker="o", label=name, linestyle=style)
        final = last_score(arms["scratch"]["curve"])
        ax.axhline(0.95 * final, color="grey", linewidth=0.8, label="95% of scratch final")
        ax.set_title(f"{Path(results['source_embedding']).name} -> {Path(target).name}")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("held-out mean MRR@10")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
