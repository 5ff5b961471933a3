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

The arguments are declared in :mod:`contrastkit.cli_parser`; each command reads them, calls the
library (:class:`~contrastkit.training.Trainer`, :func:`~contrastkit.eval_checkpoint.evaluate_checkpoint`,
:func:`~contrastkit.analysis.analyze_recipe`, ...) and prints what it returns.

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
from typing import TYPE_CHECKING

from contrastkit.cli_parser import build_parser
from contrastkit.errors import ContrastkitError, PluginLoadWarning

if TYPE_CHECKING:  # the commands import these lazily, to keep `contrastkit --help` fast
    from contrastkit.analysis import PairEstimate
    from contrastkit.evaluation import EvalResult
    from contrastkit.registry import Registry
    from contrastkit.training import Trainer, TrainResult

__all__ = ["build_parser", "main", "one_line"]


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
    from contrastkit.training import Trainer

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
    from contrastkit.training import StagedTrainer

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

    from contrastkit.training.preflight import check_run_dir

    check_run_dir(trainer.out_dir, create=False)  # the real run would stop here; a dry run writes nothing
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
    from contrastkit.eval_checkpoint import evaluate_checkpoint

    _load_registry_reporting_warnings()
    found = evaluate_checkpoint(args.config, args.overrides, checkpoint=args.checkpoint, random_init=args.random_init,
                                print_fn=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
        return 0
    source = f"random-init encoders (seed {found.seed})" if found.random_init else f"{found.checkpoint} (step {found.step})"
    print(f"evaluating {source} on {found.device}")
    rows = [("label", "probe", "metric", "value")]
    rows += [(r.label, r.probe, r.metric, f"{r.value:.2f}" + ("%" if r.metric == "top1" else " px")) for r in found.results]
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


def _cmd_analyze(args: argparse.Namespace) -> int:
    from contrastkit.analysis import analyze_recipe, check_sweep_key, parse_sweep
    from contrastkit.config import apply_overrides, load_config, read_toml

    _load_registry_reporting_warnings()
    sweep = parse_sweep(args.sweep) if args.sweep else None
    base = load_config(args.config, args.overrides)
    batch = args.batch if args.batch is not None else base.train.batch_size
    if sweep is None:
        found = analyze_recipe(args.config, args.overrides, steps=args.steps, batch_size=batch, lr=args.lr)
        if args.json:
            print(json.dumps({"steps": args.steps, "batch": batch, "device": str(found.device),
                              "estimates": [e.as_dict() for e in found.estimates]}, indent=2))
            return 0
        print(f"analyzing {args.config} on {found.device}: critic (encoders + critic, view maker frozen) "
              f"trained {args.steps} steps at batch {batch}, estimated on {found.estimates[0].batches} test batches")
        for e in found.estimates:
            print(str(e))
        return 0
    key, values = sweep
    check_sweep_key(key, apply_overrides(read_toml(args.config), args.overrides))
    label = args.eval_label or next(iter(base.eval.labels or ()), None)
    return _sweep(args, key, values, batch=batch, label=label)


def _sweep(args: argparse.Namespace, key: str, values: list[str], *, batch: int, label: str | None) -> int:
    """``analyze --sweep``: one estimate and probe per value (the first value's label for all), then the files."""
    from contrastkit.analysis import analyze_recipe, run_sweep, write_sweep

    out = Path(args.out) if args.out else Path("runs") / "analyze" / Path(args.config).stem
    if not args.json:
        print(f"sweeping {key} over {', '.join(values)}: {args.steps} critic steps at batch {batch} each, "
              "then a linear probe")

    def one(value: str) -> tuple[list[PairEstimate], EvalResult | None]:
        nonlocal label
        found = analyze_recipe(args.config, [*args.overrides, f"{key}={value}"], steps=args.steps, batch_size=batch,
                               lr=args.lr, label=label, probe=True)
        label = found.label
        if not args.json:
            line = "; ".join(f"{e.pair} {e.i_nce:.3f}" + (" (saturated)" if e.saturated else "") for e in found.estimates)
            print(f"{key} = {value}: I_NCE {line} nats (K = {found.estimates[0].num_negatives}); {found.probe}")
        return found.estimates, found.probe

    points = run_sweep(key, values, one)
    assert label is not None  # each of the (at least two) sweep values probed a label
    table_path, plot_path = write_sweep(out, key, points, label=label)
    if args.json:
        print(json.dumps({"key": key, "label": label, "steps": args.steps, "batch": batch, "table": str(table_path),
                          "plot": str(plot_path), "points": [p.as_dict() for p in points]}, indent=2))
        return 0
    print(f"wrote {table_path} and {plot_path}")
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from contrastkit.errors import ConfigError
    from contrastkit.experiments import EXPERIMENTS, get_experiment, run_many, write_docs
    from contrastkit.experiments.settings import parse_jobs, parse_scale, parse_seeds

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
    jobs = parse_jobs(args.jobs)
    _load_registry_reporting_warnings()
    root = Path(args.out)
    if args.names:
        run_many(args.names, root, quick=args.quick, device=args.device, fresh=args.fresh, seeds=seeds, scale=scale,
                 jobs=jobs)
    if args.docs:
        print(f"wrote {write_docs(root, Path(args.docs))}")
    return 0


_COMMANDS = {
    "train": _cmd_train, "eval": _cmd_eval, "analyze": _cmd_analyze, "experiment": _cmd_experiment,
    "export": _cmd_export, "plugins": _cmd_plugins,
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
