"""The ``contrastkit`` command line's grammar: one argument parser, one sub-parser per command.

:mod:`contrastkit.cli` runs the commands; this module only declares their arguments and help.

Example:
    >>> args = build_parser().parse_args(["eval", "x.toml", "--random-init", "--set", "train.device=cpu"])
    >>> args.command, args.random_init, args.overrides
    ('eval', True, ['train.device=cpu'])
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contrastkit import __version__

if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so docs and tests can inspect it).

    Example:
        >>> build_parser().parse_args(["train", "x.toml", "--set", "train.lr=0.1"]).overrides
        ['train.lr=0.1']
    """
    parser = argparse.ArgumentParser(prog="contrastkit", description="Contrastive representation learning.")
    parser.add_argument("--version", action="version", version=f"contrastkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_eval, _add_export, _add_analyze, _add_experiment, _add_plugins):
        add(sub)
    return parser


def _add_overrides(parser: argparse.ArgumentParser, *, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable, into ``overrides``), the same for every command that reads a recipe."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe key, value parsed as TOML (repeatable): --set {example}",
    )


def _add_train(sub: _SubParsers) -> None:
    train = sub.add_parser("train", help="train from a TOML recipe", description="Train from a TOML recipe.")
    train.add_argument("config", metavar="CONFIG", help="path to the TOML recipe, e.g. examples/quickstart.toml")
    _add_overrides(train, example="train.max_steps=20")
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="build everything, push one batch through, print the pipeline and exit",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar (for CI logs)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest valid checkpoint in train.out_dir (same recipe)",
    )
    train.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="KEY",
        help="with --resume: accept this optimisation key changed by --set (train.lr, train.min_lr, "
        "train.view_maker_lr, train.warmup_steps, train.schedule, train.grad_clip, train.weight_decay); repeatable",
    )


def _add_eval(sub: _SubParsers) -> None:
    evaluate = sub.add_parser(
        "eval",
        help="linear and kNN probes of a trained checkpoint",
        description="Linear probe and kNN probe of a checkpoint's frozen encoders, on every label of the "
        "recipe's dataset (or eval.labels): top-1 accuracy (in %) for classes, mean error in pixels for positions.",
    )
    evaluate.add_argument(
        "config", metavar="CONFIG",
        help="the TOML recipe the checkpoint was trained with (a [[stages]] recipe: its last stage)",
    )
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="checkpoint to evaluate (default: the latest in train.out_dir/checkpoints/)",
    )
    which.add_argument(
        "--random-init",
        action="store_true",
        help="evaluate freshly initialised encoders (seeded by train.seed): the random-encoder baseline",
    )
    _add_overrides(evaluate, example="train.device=cpu")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_export(sub: _SubParsers) -> None:
    export = sub.add_parser(
        "export",
        help="write a checkpoint's encoders to safetensors",
        description="Write a checkpoint's encoders to a safetensors file, with the recipe as metadata; "
        "load them with contrastkit.export.load_encoder.",
    )
    export.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a training checkpoint, e.g. runs/x/checkpoints/final.pt"
    )
    export.add_argument("--out", required=True, metavar="PATH", help="the file to write, e.g. encoder.safetensors")


def _add_analyze(sub: _SubParsers) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="estimate I_NCE between a recipe's views; --sweep: I_NCE and accuracy per value of a recipe key",
        description="Train only the critic (fresh encoders + critic, view maker frozen) on the recipe's views with "
        "in-batch InfoNCE, then report the lower bound I_NCE = log(K+1) - L per view pair on held-out test batches. "
        "--sweep also probes the trained encoders and writes a markdown table and a PNG plot of accuracy "
        "against I_NCE (InfoMin's reverse-U). See docs/analysis.md.",
    )
    analyze.add_argument("config", metavar="CONFIG", help="path to the TOML recipe, e.g. examples/factors.toml")
    _add_overrides(analyze, example="train.device=cpu")
    analyze.add_argument("--steps", type=int, default=200, metavar="N", help="critic training steps (default 200)")
    analyze.add_argument(
        "--batch", type=int, default=None, metavar="B",
        help="batch size; K = B - 1 negatives, the bound is at most log(B) (default train.batch_size)",
    )
    analyze.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate of the critic (default 0.002)")
    analyze.add_argument(
        "--sweep", metavar="KEY=V1,V2,...",
        help="sweep a recipe key (each value applied like --set): --sweep augment.strength=0.5,1,2",
    )
    analyze.add_argument(
        "--eval-label", metavar="LABEL",
        help="label of the linear probe in a sweep (default: the first of eval.labels or the dataset's labels)",
    )
    analyze.add_argument(
        "--out", metavar="DIR", help="where a sweep writes sweep.md and sweep.png (default runs/analyze/<recipe stem>)"
    )
    analyze.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_experiment(sub: _SubParsers) -> None:
    experiment = sub.add_parser(
        "experiment",
        help="reproduce a seed paper's finding on the embedded data (factors, reverse-u, learned-views, negatives)",
        description="Run reproductions of the seed papers' findings, each under 30 minutes on 2 CPU cores: train "
        "its arms, probe them, write results.md, plot.png and result.json under --out/NAME, and judge the finding "
        "by the criterion in contrastkit/experiments/NAME.py. See docs/reproductions.md.",
    )
    experiment.add_argument(
        "names", nargs="*", metavar="NAME",
        help="factors, reverse-u, learned-views, negatives, or all (none: only --docs or --list)",
    )
    experiment.add_argument(
        "--out", default="runs/experiments", metavar="DIR", help="where each experiment runs (default runs/experiments)"
    )
    experiment.add_argument(
        "--quick", action="store_true", help="a smoke run of the whole experiment on tiny data (seconds, no result)"
    )
    experiment.add_argument("--fresh", action="store_true", help="retrain arms whose results are already saved")
    experiment.add_argument(
        "--seeds", metavar="N", help="train every arm with seeds 0..N-1 (default 3; 1 with --quick)"
    )
    experiment.add_argument(
        "--scale", default="cpu", metavar="NAME",
        help="cpu (default: minutes on 2 CPU cores) or paper (longer schedules and more data, for --device cuda)",
    )
    experiment.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default auto)")
    experiment.add_argument(
        "--jobs", default="1", metavar="N",
        help="train N runs at once, each in its own process with 1/N of the CPU threads (default 1)",
    )
    experiment.add_argument(
        "--docs", metavar="PATH",
        help="afterwards, regenerate this page (e.g. docs/reproductions.md) from every result under --out",
    )
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")


def _add_plugins(sub: _SubParsers) -> None:
    plugins = sub.add_parser("plugins", help="list installed plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
