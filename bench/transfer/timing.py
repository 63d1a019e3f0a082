"""Seconds per training step of recorded arms, measured again on equal terms: issue 15's wall-time ratio.

    OMP_NUM_THREADS=1 python bench/transfer/timing.py runs/tb15s0b/smollm2-135m/scratch --steps 30 \\
        --out bench/results/transfer/round10/timing/scratch.json &
    OMP_NUM_THREADS=1 python bench/transfer/timing.py runs/tb150/smollm2-135m/transfer-vocab+deep5nh --steps 30 \\
        --out bench/results/transfer/round10/timing/deep5nh.json

An arm's ``seconds_per_step`` in its ``arm.json`` comes from its own run, beside whatever else the machine ran
then (another arm, its dev evaluations, a test run). This trains the run's recorded ``config.json`` again for
``--steps`` steps (the same data, seed and model; no dev evaluation, no checkpoint; in a temporary folder) and
writes the mean seconds per step and the per-step times. Start two at once, one thread each, and both see the
same load. ``table.py --timing LABEL=FILE`` puts the timed figure in the table in place of the recorded one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def timed_config(recorded: dict, steps: int, out: Path) -> dict:
    """The run's recorded config, made to train ``steps`` steps into ``out`` with nothing but training steps."""
    if steps < 1:
        _fail(f"--steps {steps}: time at least 1 step")
    config = json.loads(json.dumps(recorded))  # a deep copy
    config.update(steps=steps, eval_every=0, patience=0, log_every=1, checkpoint_every=steps + 1, output_dir=str(out))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="A run folder holding the config.json of the arm to time.")
    parser.add_argument("--steps", type=int, default=30, help="Training steps to time.")
    parser.add_argument("--out", type=Path, required=True, help="The JSON file to write.")
    args = parser.parse_args()
    recorded = args.run / "config.json"
    if not recorded.is_file():
        _fail(f"no {recorded}; give the run folder of a trained arm")

    from promptembedder.atomic import write_text
    from promptembedder.training import Trainer
    from promptembedder.training.config import config_from_dict

    with tempfile.TemporaryDirectory(prefix="timing-") as folder:
        trainer = Trainer(config_from_dict(timed_config(json.loads(recorded.read_text()), args.steps, Path(folder))))
        trainer.run()
        seconds = [h["step_s"] for h in trainer.history]
    result = {
        "run": str(args.run),
        "steps": len(seconds),
        "seconds_per_step": statistics.fmean(seconds),
        "median_seconds_per_step": statistics.median(seconds),
        "step_seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"{args.run}: {result['seconds_per_step']:.2f} s a step over {len(seconds)} steps -> {args.out}")


if __name__ == "__main__":
    main()
