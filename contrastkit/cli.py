"""The ``contrastkit`` command line: a thin layer over :class:`~contrastkit.Pipeline` and the registry.

Commands::

    contrastkit train CONFIG [--set table.key=value ...] [--dry-run] [--quiet] [--resume [--allow-change KEY]]
        (a recipe with [[stages]] trains each stage in turn in train.out_dir/<stage name>;
        --set applies to every stage and wins over a stage's own set)
    contrastkit eval CONFIG [--checkpoint PATH | --random-init] [--set table.key=value ...] [--json]
    contrastkit export CHECKPOINT --out encoder.safetensors
    contrastkit analyze CONFIG [--set k=v ...] [--steps N] [--batch B] [--lr LR] [--json]
        [--sweep KEY=V1,V2,... [--eval-label LABEL] [--out DIR]]
    contrastkit plugins [--json]

Any :class:`~contrastkit.errors.ContrastkitError` is printed as one line (``error: ...``) on stderr
with exit status 2; no traceback.

Example:
    >>> main(["plugins", "--json"]) == 0  # doctest: +ELLIPSIS
    [...
    True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contrastkit import __version__
from contrastkit.errors import ContrastkitError, PluginLoadWarning

if TYPE_CHECKING:  # the commands import these lazily, to keep `contrastkit --help` fast
    from contrastkit.analysis import PairEstimate
    from contrastkit.config import Config
    from contrastkit.pipeline import Pipeline
    from contrastkit.registry import Registry
    from contrastkit.trainer import Trainer, TrainResult

__all__ = ["build_parser", "main", "one_line"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so docs and tests can inspect it).

    Example:
        >>> build_parser().parse_args(["train", "x.toml", "--set", "train.lr=0.1"]).overrides
        ['train.lr=0.1']
    """
    parser = argparse.ArgumentParser(prog="contrastkit", description="Contrastive representation learning.")
    parser.add_argument("--version", action="version", version=f"contrastkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train from a TOML recipe", description="Train from a TOML recipe.")
    train.add_argument("config", metavar="CONFIG", help="path to the TOML recipe, e.g. examples/quickstart.toml")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, value parsed as TOML (repeatable): --set train.max_steps=20",
    )
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
    evaluate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, value parsed as TOML (repeatable): --set train.device=cpu",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")

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

    analyze = sub.add_parser(
        "analyze",
        help="estimate I_NCE between a recipe's views; --sweep: I_NCE and accuracy per value of a recipe key",
        description="Train only the critic (fresh encoders + critic, view maker frozen) on the recipe's views with "
        "in-batch InfoNCE, then report the lower bound I_NCE = log(K+1) - L per view pair on held-out test batches. "
        "--sweep also probes the trained encoders and writes a markdown table and a PNG plot of accuracy "
        "against I_NCE (InfoMin's reverse-U). See docs/analysis.md.",
    )
    analyze.add_argument("config", metavar="CONFIG", help="path to the TOML recipe, e.g. examples/factors.toml")
    analyze.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, value parsed as TOML (repeatable): --set train.device=cpu",
    )
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
        "--docs", metavar="PATH",
        help="afterwards, regenerate this page (e.g. docs/reproductions.md) from every result under --out",
    )
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")

    plugins = sub.add_parser("plugins", help="list installed plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser


def _load_registry_reporting_warnings() -> Registry:
    from contrastkit.registry import get_registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginLoadWarning)
        registry = get_registry()
    for warning in caught:
        if issubclass(warning.category, PluginLoadWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return registry


def _cmd_plugins(args: argparse.Namespace) -> int:
    from contrastkit.registry import KINDS

    registry = _load_registry_reporting_warnings()
    infos = list(registry.plugins.values()) + registry.failures
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="contrastkit plugins")
    for column in ("plugin", "distribution", "version", "registers"):
        table.add_column(column)
    for info in infos:
        if info.error:
            registers = f"[red]failed: {info.error}[/red]"
        else:
            registers = "\n".join(
                f"{kind}: " + ", ".join(
                    f"{name} (overrides the built-in)" if name in info.overrides[kind] else name
                    for name in info.registered[kind]
                )
                for kind in KINDS
                if info.registered[kind]
            )
        table.add_row(info.name, info.distribution or "-", info.version or "-", registers or "-")
    console = Console(width=max(100, Console().width))
    console.print(table)
    for info in registry.plugins.values():
        for kind in KINDS:
            for name in info.overrides[kind]:
                console.print(f"[yellow]override:[/yellow] {escape(f'{kind} {name!r} is {info.label}')}'s, "
                              "not the built-in", highlight=False)
    for dup in registry.duplicates():
        console.print(f"[red]conflict:[/red] {dup}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import attrs

    from contrastkit.config import load_config
    from contrastkit.trainer import Trainer

    _load_registry_reporting_warnings()
    config = load_config(args.config, args.overrides)
    if config.stages:
        return _train_stages(args)
    if args.quiet:
        config = attrs.evolve(config, log=attrs.evolve(config.log, progress=False))
    trainer = Trainer.from_config(config, path=args.config)
    if args.dry_run:
        return _dry_run(trainer)
    print(f"training {args.config} on {trainer.device} -> {trainer.out_dir}")
    _report(trainer.fit(resume=args.resume, allow_changes=args.allow_change))
    return 0


def _train_stages(args: argparse.Namespace) -> int:
    """A ``[[stages]]`` recipe: every stage built and checked first, then trained in order."""
    import attrs

    from contrastkit.config import load_stages
    from contrastkit.trainer import StagedTrainer

    stages = load_stages(args.config, args.overrides)
    if args.quiet:
        stages = [
            attrs.evolve(s, config=attrs.evolve(s.config, log=attrs.evolve(s.config.log, progress=False)))
            for s in stages
        ]
    staged = StagedTrainer(stages, path=args.config)
    if args.dry_run:
        for stage, trainer in zip(stages, staged.trainers):
            carry = ", ".join(stage.entry.carry) or "nothing (all fresh)"
            overrides = ", ".join(f"{k} = {v!r}" for k, v in stage.entry.set.items()) or "none"
            print(f"== stage {stage.index + 1}/{stage.count} {stage.name} -> {trainer.out_dir}")
            print(f"set          {overrides}")
            print(f"carry        {carry}" + (" from the previous stage's final.pt" if stage.entry.carry else ""))
            _dry_run(trainer)
        return 0
    print(f"training {args.config} in {len(stages)} stages on {staged.trainers[0].device}")
    results = staged.fit(resume=args.resume, allow_changes=args.allow_change)
    for stage, result in zip(stages, results):
        print(f"== stage {stage.index + 1}/{stage.count} {stage.name}")
        _report(result)
    return 0


def _report(result: TrainResult) -> None:
    loss = result.final_metrics.get("loss", float("nan"))
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s); final loss {loss:.4f}"
    )
    mi = {k: v for k, v in result.final_metrics.items() if k.startswith("mi_lower_bound/")}
    for key, value in mi.items():
        print(f"I_NCE lower bound {key.split('/', 1)[1]}: {value:.3f} nats")
    for knn in result.knn:
        print(str(knn))
    if result.tensorboard_dir is not None:
        print(f"TensorBoard logs: {result.tensorboard_dir}  (view with: tensorboard --logdir {result.tensorboard_dir})")
    print(f"Checkpoint: {result.checkpoint}")


def _dry_run(trainer: Trainer) -> int:
    import torch

    pipeline = trainer.pipeline.to(trainer.device)
    pipeline.train()
    batch = next(iter(trainer.make_loader()))
    output = pipeline(batch)
    output.loss.backward()
    if not torch.isfinite(output.loss):
        raise ContrastkitError(f"dry run: the first batch gave a non-finite loss ({float(output.loss.detach())})")
    print(pipeline.describe())
    shapes = ", ".join(f"v{i + 1} {tuple(v.shape)}" for i, v in enumerate(output.views))
    print(f"batch        {shapes}")
    print(f"device       {trainer.device}")
    print(f"dry run ok: one batch of {trainer.train_cfg.batch_size}, loss {float(output.loss.detach()):.4f}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from contrastkit.checkpoint import CheckpointDir, nonfinite_in_checkpoint, read_checkpoint, state_dict_mismatch
    from contrastkit.config import load_config
    from contrastkit.errors import CheckpointError, ConfigError, close_matches
    from contrastkit.evaluation import evaluate
    from contrastkit.pipeline import Pipeline
    from contrastkit.trainer import select_device

    _load_registry_reporting_warnings()
    config = load_config(args.config, args.overrides)
    if config.stages:  # a staged recipe is evaluated as its last stage, from that stage's run folder
        from contrastkit.config import load_stages

        config = load_stages(args.config, args.overrides)[-1].config
    payload = None
    checkpoint = None
    if not args.random_init:  # read the checkpoint before the (slower) dataset is built
        folder = Path(config.train.out_dir or "runs/default") / "checkpoints"
        if args.checkpoint:
            checkpoint = Path(args.checkpoint)
            payload = read_checkpoint(checkpoint)
            bad = nonfinite_in_checkpoint({"model": payload["model"]})
            if bad is not None:
                raise CheckpointError(f"{checkpoint}: {bad} holds NaN or inf (the run diverged); evaluate an "
                                      "earlier checkpoint from its checkpoints/ folder")
        else:  # the newest checkpoint that reads and is finite; newer broken ones are named
            checkpoint, payload, skipped = CheckpointDir(folder).newest_valid(resumable=False)
            for line in skipped:
                print(f"skipped {line}", file=sys.stderr)
            if checkpoint is None:
                raise CheckpointError(skipped[0] if skipped else f"{folder}: checkpoint not found; train first or pass "
                                      "--checkpoint")
    device = select_device(config.train.device)
    torch.manual_seed(config.train.seed)  # --random-init: the weights training would have started from
    pipeline = Pipeline.from_config(config, path=args.config)
    if payload is not None:
        try:
            pipeline.load_state_dict(payload["model"], strict=True)
        except RuntimeError as exc:
            raise ContrastkitError(
                f"{checkpoint}: the weights do not fit {args.config}'s pipeline; pass the recipe it was trained "
                f"with ({state_dict_mismatch(exc)})"
            ) from None
    pipeline.to(device)
    assert pipeline.dataset is not None  # from_config always builds the [data] slot

    keys = tuple(getattr(pipeline.dataset, "label_keys", ()))
    labels = tuple(config.eval.labels) if config.eval.labels is not None else keys
    for label in labels:
        if label not in keys:
            matches = close_matches(label, keys)
            hint = f"did you mean {matches[0]!r}?" if matches else f"labels: {', '.join(keys) or 'none'}"
            message = f"eval.labels: the dataset has no label {label!r}; {hint} (got {label!r})"
            raise ConfigError(message, path=args.config)
    if not labels:
        raise ConfigError("data: the dataset declares no label_keys; there is nothing to evaluate", path=args.config)

    results = evaluate(
        pipeline,
        pipeline.dataset,
        pipeline.build_dataset("test"),
        labels=labels,
        k=config.eval.knn_k,
        temperature=config.eval.knn_temperature,
        epochs=config.eval.linear_epochs,
        batch_size=config.train.batch_size,
        max_samples=config.eval.max_samples,
        seed=config.train.seed,
    )
    step = payload.get("step") if payload is not None else None
    if args.json:
        report = {
            "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "random_init": bool(args.random_init),
            "step": step,
            "device": str(device),
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(report, indent=2))
        return 0
    source = f"random-init encoders (seed {config.train.seed})" if args.random_init else f"{checkpoint} (step {step})"
    print(f"evaluating {source} on {device}")
    rows = [("label", "probe", "metric", "value")]
    rows += [(r.label, r.probe, r.metric, f"{r.value:.2f}" + ("%" if r.metric == "top1" else " px")) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from contrastkit.export import export_checkpoint

    _load_registry_reporting_warnings()
    info = export_checkpoint(args.checkpoint, args.out)
    encoders = len(set(info.view_encoder))
    print(
        f"wrote {args.out}: {encoders} encoder{'s' if encoders != 1 else ''} for {info.num_views} views "
        f"(channels {info.view_channels} -> features {info.feature_dims}), step {info.step}"
    )
    return 0


def _analysis_setup(
    config_path: str, overrides: list[str], label: str | None, *, probe: bool
) -> tuple[Config, Pipeline, Any, str | None]:
    """Recipe, pipeline (fresh, seeded, on its device), test split and the label to probe (``probe``: checked)."""
    import torch

    from contrastkit.config import load_config
    from contrastkit.errors import ConfigError, close_matches
    from contrastkit.pipeline import Pipeline
    from contrastkit.trainer import select_device

    config = load_config(config_path, overrides)
    if config.stages:
        raise ConfigError(
            "stages: analyze takes a single-stage recipe; --set the stage's keys instead", path=config_path
        )
    torch.manual_seed(config.train.seed)  # fresh encoders and critic, the same for every sweep value
    pipeline = Pipeline.from_config(config, path=config_path)
    test = pipeline.build_dataset("test")
    keys = tuple(getattr(test, "label_keys", ()))
    if probe and label is None:  # default: the first label the recipe evaluates
        label = next(iter(config.eval.labels or keys), None)
        if label is None:
            raise ConfigError("--eval-label: the test split has no labels to probe", path=config_path)
    if probe and label not in keys:
        assert label is not None  # set above when probing
        matches = close_matches(label, keys)
        hint = f"did you mean {matches[0]!r}?" if matches else f"its labels: {', '.join(keys) or 'none'}"
        raise ConfigError(f"--eval-label: the test split has no label {label!r}; {hint}", path=config_path)
    return config, pipeline.to(select_device(config.train.device)), test, label


def _cmd_analyze(args: argparse.Namespace) -> int:
    from contrastkit.analysis import (
        check_sweep_key,
        estimate_view_information,
        parse_sweep,
        probe_accuracy,
        run_sweep,
        sweep_table,
        write_sweep_plot,
    )
    from contrastkit.config import apply_overrides, load_config, read_toml

    _load_registry_reporting_warnings()
    sweep = parse_sweep(args.sweep) if args.sweep else None
    base = load_config(args.config, args.overrides)
    batch = args.batch if args.batch is not None else base.train.batch_size

    def estimate(
        overrides: list[str], label: str | None, probe: bool
    ) -> tuple[list[PairEstimate], Any, Pipeline, str | None]:
        config, pipeline, test, label = _analysis_setup(args.config, overrides, label, probe=probe)
        estimates = estimate_view_information(
            pipeline, pipeline.dataset, test, steps=args.steps, batch_size=batch, lr=args.lr, seed=config.train.seed
        )
        result = None
        if probe:
            assert label is not None  # _analysis_setup checked it is one of the test split's labels
            result = probe_accuracy(pipeline, pipeline.dataset, test, label=label, config=config)
        return estimates, result, pipeline, label

    if sweep is None:
        estimates, _, pipeline, _ = estimate(list(args.overrides), None, False)
        if args.json:
            print(json.dumps({"steps": args.steps, "batch": batch, "device": str(pipeline.device),
                              "estimates": [e.as_dict() for e in estimates]}, indent=2))
            return 0
        print(f"analyzing {args.config} on {pipeline.device}: critic (encoders + critic, view maker frozen) "
              f"trained {args.steps} steps at batch {batch}, estimated on {estimates[0].batches} test batches")
        for e in estimates:
            print(str(e))
        return 0

    key, values = sweep
    check_sweep_key(key, apply_overrides(read_toml(args.config), args.overrides))
    label = args.eval_label or next(iter(base.eval.labels or ()), None)
    out = Path(args.out) if args.out else Path("runs") / "analyze" / Path(args.config).stem
    if not args.json:
        print(f"sweeping {key} over {', '.join(values)}: {args.steps} critic steps at batch {batch} each, "
              "then a linear probe")

    def one(value: str) -> tuple[list[PairEstimate], Any]:
        nonlocal label
        estimates, result, _, label = estimate([*args.overrides, f"{key}={value}"], label, True)
        if not args.json:
            line = "; ".join(f"{e.pair} {e.i_nce:.3f}" + (" (saturated)" if e.saturated else "") for e in estimates)
            print(f"{key} = {value}: I_NCE {line} nats (K = {estimates[0].num_negatives}); {result}")
        return estimates, result

    points = run_sweep(key, values, one)
    assert label is not None  # each of the (at least two) sweep values probed a label
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / "sweep.md"
    table_path.write_text(sweep_table(key, points, label=label) + "\n")
    plot_path = write_sweep_plot(out / "sweep.png", key, points, label=label)
    if args.json:
        print(json.dumps({"key": key, "label": label, "steps": args.steps, "batch": batch, "table": str(table_path),
                          "plot": str(plot_path), "points": [p.as_dict() for p in points]}, indent=2))
        return 0
    print(f"wrote {table_path} and {plot_path}")
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from contrastkit.errors import ConfigError
    from contrastkit.experiments import EXPERIMENTS, get_experiment, run_many, write_docs
    from contrastkit.experiments.base import parse_scale, parse_seeds

    if args.list:
        for name, module in EXPERIMENTS.items():
            print(f"{name:14s} {module.TITLE} (budget {module.BUDGET_SECONDS // 60} min)")
        return 0
    if not args.names and not args.docs:
        raise ConfigError("experiment: name an experiment (" + ", ".join(EXPERIMENTS) + ", all) or give --docs")
    if "all" in args.names and len(args.names) > 1:
        raise ConfigError("experiment: 'all' runs every experiment; give it alone")
    for name in args.names:
        if name != "all":
            get_experiment(name)
    if args.docs and args.quick:
        raise ConfigError("--docs: --quick results are smoke runs and never go into the docs; drop --quick")
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    scale = parse_scale(args.scale)
    _load_registry_reporting_warnings()
    root = Path(args.out)
    if args.names:
        run_many(args.names, root, quick=args.quick, device=args.device, fresh=args.fresh, seeds=seeds, scale=scale)
    if args.docs:
        print(f"wrote {write_docs(root, Path(args.docs))}")
    return 0


_COMMANDS = {
    "train": _cmd_train, "eval": _cmd_eval, "analyze": _cmd_analyze, "experiment": _cmd_experiment, "export": _cmd_export, "plugins": _cmd_plugins,
}


def one_line(exc: BaseException) -> str:
    """The error's own line, also when a DataLoader worker re-raised it with the worker's traceback inside.

    Example:
        >>> from contrastkit.errors import ConfigError
        >>> wrapped = ConfigError("Caught ConfigError in DataLoader worker process 0.\\nOriginal Traceback (most "
        ...                       "recent call last):\\n  File ...\\ncontrastkit.errors.ConfigError: a.png: cannot decode")
        >>> one_line(wrapped)
        'a.png: cannot decode'
    """
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last and "Error" in last.split(": ", 1)[0] else last


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 a contrastkit error).

    Example:
        >>> main(["train", "no-such-recipe.toml"])
        2
    """
    args = build_parser().parse_args(argv)
    from contrastkit import distributed

    # Under torchrun only rank 0 reports; the other ranks' errors still reach stderr, with their rank.
    other_rank = distributed.launched_by_torchrun() and os.environ.get("RANK", "0") != "0"
    where = f"rank {os.environ.get('RANK')}: " if distributed.launched_by_torchrun() else ""
    quiet = contextlib.redirect_stdout(open(os.devnull, "w")) if other_rank else contextlib.nullcontext()  # noqa: SIM115
    try:
        with quiet:
            return _COMMANDS[args.command](args)
    except ContrastkitError as exc:
        print(f"{where}error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{where}interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A plugin's own bug: its traceback is what its author needs, headed by who and where.
        from contrastkit.registry import get_registry, plugin_at_fault

        heading = plugin_at_fault(exc, get_registry())
        if heading is None:
            raise
        print(f"{where}error: {heading}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()  # leave the process group the trainer joined (no-op otherwise)
