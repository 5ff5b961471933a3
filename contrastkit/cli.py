"""The ``contrastkit`` command line: a thin layer over :class:`~contrastkit.Pipeline` and the registry.

Commands::

    contrastkit train CONFIG [--set table.key=value ...] [--dry-run] [--quiet]
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
import json
import sys
import warnings
from collections.abc import Sequence

from contrastkit import __version__
from contrastkit.errors import ContrastkitError, PluginLoadWarning

__all__ = ["build_parser", "main"]


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

    plugins = sub.add_parser("plugins", help="list installed plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser


def _load_registry_reporting_warnings():  # noqa: ANN202 - returns Registry, imported lazily
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
    from rich.table import Table

    table = Table(title="contrastkit plugins")
    for column in ("plugin", "distribution", "version", "registers"):
        table.add_column(column)
    for info in infos:
        if info.error:
            registers = f"[red]failed: {info.error}[/red]"
        else:
            registers = "\n".join(
                f"{kind}: {', '.join(info.registered[kind])}" for kind in KINDS if info.registered[kind]
            )
        table.add_row(info.name, info.distribution or "-", info.version or "-", registers or "-")
    console = Console(width=max(100, Console().width))
    console.print(table)
    for dup in registry.duplicates():
        console.print(f"[red]conflict:[/red] {dup}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import attrs

    from contrastkit.config import load_config
    from contrastkit.trainer import Trainer

    _load_registry_reporting_warnings()
    config = load_config(args.config, args.overrides)
    if args.quiet:
        config = attrs.evolve(config, log=attrs.evolve(config.log, progress=False))
    trainer = Trainer.from_config(config, path=args.config)
    if args.dry_run:
        return _dry_run(trainer)
    print(f"training {args.config} on {trainer.device} -> {trainer.out_dir}")
    result = trainer.fit()
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
    return 0


def _dry_run(trainer) -> int:  # noqa: ANN001
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 a contrastkit error).

    Example:
        >>> main(["train", "no-such-recipe.toml"])
        2
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "plugins":
            return _cmd_plugins(args)
        return _cmd_train(args)
    except ContrastkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
