"""``contrastkit experiment --jobs``: the same runs one after another in one process vs ``--jobs N`` at once.

Both sides train the same ``--runs`` runs (seeds 0 .. runs-1 of one arm of the ``negatives``
experiment's cpu recipe, shortened to ``--steps`` steps on ``--size`` images, with its probes)
through :func:`contrastkit.experiments.arms.train_arms`, each side in a fresh folder so nothing is
read back:

- **one process**: ``jobs = 1``, every run in this process with all of its torch threads;
- **jobs**: ``jobs = N``, every run in a spawned worker with ``threads // N`` threads.

The wall-clock of each side includes everything a user waits for (workers starting, building,
training, probes, records). The report gives both times and the speed-up (one process / jobs);
a speed-up above 1 means ``--jobs`` finishes the same experiment sooner on this machine.

Usage (from a checkout after ``pip install -e .``)::

    python benchmarks/experiment_jobs.py                       # 4 runs of 300 steps, --jobs 2
    python benchmarks/experiment_jobs.py --jobs 4 --runs 8 --json jobs.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from contrastkit.experiments import negatives
from contrastkit.experiments.arms import train_arms
from contrastkit.experiments.recipes import set_key
from contrastkit.experiments.settings import RunSettings, discard


def bench_recipe(*, steps: int, size: int, num_negatives: int = 256) -> dict[str, Any]:
    """The ``negatives`` cpu arm shortened to ``steps`` steps on ``size`` images (checkpoints at the end only).

    Example:
        >>> r = bench_recipe(steps=5, size=256)
        >>> r["train"]["max_steps"], r["data"]["size"], r["negatives"]["num_negatives"]
        (5, 256, 256)
    """
    recipe = negatives.recipe(num_negatives)
    set_key(recipe, "train.max_steps", steps)
    set_key(recipe, "train.warmup_steps", min(30, steps // 10))
    recipe["train"].pop("checkpoint_every_n_steps")  # the epoch-end and final checkpoints stay
    set_key(recipe, "data.size", size)
    return recipe


def time_side(recipe: dict[str, Any], *, runs: int, jobs: int, out_dir: Path) -> float:
    """Wall-clock seconds to train ``runs`` seeds of ``recipe`` with ``jobs`` runs at a time in ``out_dir``.

    Example:
        >>> seconds = time_side(bench_recipe(steps=2, size=256), runs=1, jobs=1, out_dir=Path(tempfile.mkdtemp()))
        >>> seconds > 0
        True
    """
    settings = RunSettings(out_dir=out_dir, device="cpu", fresh=True, print_fn=discard, seeds=tuple(range(runs)),
                           jobs=jobs)
    start = time.perf_counter()
    train_arms({"arm": recipe}, settings)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once on the jobs side (default 2)")
    parser.add_argument("--runs", type=int, default=4, help="runs per side (default 4)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--size", type=int, default=4096, help="images per run (default 4096)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 2 or args.runs < 1 or args.steps < 1 or args.size < 256:
        print("error: --jobs must be >= 2, --runs and --steps >= 1, --size >= 256", file=sys.stderr)
        return 2
    recipe = bench_recipe(steps=args.steps, size=args.size)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as scratch:
        one = time_side(recipe, runs=args.runs, jobs=1, out_dir=Path(scratch) / "one")
        many = time_side(recipe, runs=args.runs, jobs=args.jobs, out_dir=Path(scratch) / "jobs")
    figures = {
        "runs": args.runs, "steps": args.steps, "size": args.size, "threads": threads, "jobs": args.jobs,
        "one_process_seconds": round(one, 2), "jobs_seconds": round(many, 2), "speedup": round(one / many, 3),
        "torch": torch.__version__,
    }
    print(f"{args.runs} runs of {args.steps} steps (negatives cpu arm, {args.size} images), cpu, {threads} threads")
    print(f"one process ({threads} threads):          {one:8.1f} s")
    print(f"--jobs {args.jobs} ({max(1, threads // args.jobs)} thread(s) per run):   {many:8.1f} s")
    print(f"speed-up (one process / jobs): {one / many:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
