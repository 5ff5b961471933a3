"""Run state: what a checkpoint holds (the schema), how a run is restored from one, and the resume rules.

A checkpoint holds everything the run depends on (weights, optimizers, schedule, grad scaler, every
RNG state, the position in the epoch's data order, memory banks as pipeline buffers), so a resumed
run continues exactly where the run stopped: bit for bit on CPU with ``train.deterministic``.

Example:
    >>> check_allow_changes(["train.lr"], resume=True)
    >>> check_allow_changes(["train.lrr"], resume=True)
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: --allow-change: 'train.lrr' cannot change on resume; did you mean 'train.lr'?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from contrastkit import distributed
from contrastkit.config import Config
from contrastkit.errors import CheckpointError, ConfigError, close_matches
from contrastkit.recipe_keys import flatten_keys
from contrastkit.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointDir,
    capture_rng_state,
    restore_rng_state,
    state_dict_mismatch,
)

__all__ = ["CHANGEABLE_ON_RESUME", "RunState", "check_allow_changes", "check_resumable", "checkpoint_payload",
           "restore"]

# Keys that may change between a run and its resumption (they do not change what is computed).
_RESUMABLE_CHANGES = ("train.max_steps", "train.epochs", "train.out_dir", "train.device", "train.num_workers",
                      "train.checkpoint_every_n_steps", "train.keep_checkpoints", "log.", "eval.")
#: Optimisation settings ``--resume`` accepts changed when named by ``--allow-change`` (e.g. a lower
#: ``train.lr`` after the loss diverged); the resumed optimizer takes the new values.
CHANGEABLE_ON_RESUME = ("train.lr", "train.min_lr", "train.view_maker_lr", "train.warmup_steps", "train.schedule",
                        "train.grad_clip", "train.weight_decay")


@attrs.define(eq=False)
class RunState:
    """The mutable state of one run: the modules and optimizers, and where in the schedule it is.

    ``position`` counts the batches of the current epoch already consumed; ``metrics`` are the last
    logged window's means.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        >>> run = RunState(pipeline=layer, model=layer, optimizer=optimizer, view_optimizer=None,
        ...                schedulers=[], scaler=None, total_steps=10)
        >>> run.optimizers == [optimizer], run.step
        (True, 0)
    """

    pipeline: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    view_optimizer: torch.optim.Optimizer | None
    schedulers: list[Any]
    scaler: Any
    total_steps: int
    step: int = 0
    epoch: int = 0
    position: int = 0
    metrics: dict[str, float] = attrs.field(factory=dict)
    #: Every trained parameter, for gradient clipping (the groups do not change during a run).
    parameters: list[nn.Parameter] = attrs.field(factory=list)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The model optimizer, then the view maker's when it has one."""
        return [o for o in (self.optimizer, self.view_optimizer) if o is not None]


def checkpoint_payload(run: RunState, *, complete: bool, world_size: int, config: Config | None) -> dict[str, Any]:
    """The checkpoint schema: every piece of state the run depends on.

    Called on every rank (the RNG gather is a collective); only rank 0 writes it.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> run = RunState(pipeline=layer, model=layer, optimizer=torch.optim.SGD(layer.parameters(), lr=0.1),
        ...                view_optimizer=None, schedulers=[], scaler=None, total_steps=1)
        >>> sorted(checkpoint_payload(run, complete=True, world_size=1, config=None))[:4]
        ['complete', 'config', 'epoch', 'format']
    """
    rng = capture_rng_state()
    return {
        "world_size": world_size,
        "rng_ranks": distributed.all_gather_objects(rng) if world_size > 1 else None,
        "format": CHECKPOINT_FORMAT,
        "step": run.step,
        "epoch": run.epoch,
        "position": run.position,
        "complete": complete,
        "model": run.pipeline.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "view_optimizer": run.view_optimizer.state_dict() if run.view_optimizer is not None else None,
        "schedulers": [s.state_dict() for s in run.schedulers],
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "rng": rng,
        "config": config.as_dict() if config is not None else None,
        "metrics": dict(run.metrics),
    }


def check_allow_changes(allow_changes: Sequence[str], *, resume: bool) -> None:
    """``--allow-change`` names only keys of :data:`CHANGEABLE_ON_RESUME`, and only with ``--resume``.

    Example:
        >>> check_allow_changes(["train.lr"], resume=False)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --allow-change: only applies with --resume
    """
    for key in allow_changes:
        if key not in CHANGEABLE_ON_RESUME:
            matches = close_matches(key, CHANGEABLE_ON_RESUME)
            hint = f"did you mean {matches[0]!r}?" if matches else f"one of {', '.join(CHANGEABLE_ON_RESUME)}"
            raise ConfigError(f"--allow-change: {key!r} cannot change on resume; {hint}")
    if allow_changes and not resume:
        raise ConfigError("--allow-change: only applies with --resume")


def check_resumable(config: Config | None, saved: dict[str, Any] | None, path: Path, *,
                    allow_changes: Sequence[str], print_fn: Callable[[str], None]) -> None:
    """The recipe being resumed must equal the checkpoint's, except keys that do not change what is computed.

    Example:
        >>> from contrastkit.config import config_from_dict
        >>> cfg = config_from_dict({"train": {"lr": 0.1}})
        >>> check_resumable(cfg, cfg.as_dict(), Path("c.pt"), allow_changes=(), print_fn=print)
    """
    if saved is None or config is None:
        return
    now, then = flatten_keys(config.as_dict()), flatten_keys(saved)
    for key in sorted(set(now) | set(then)):
        if key.startswith(_RESUMABLE_CHANGES) or now.get(key) == then.get(key):
            continue
        if key in allow_changes:
            print_fn(f"resume: {key} changed from {then.get(key)!r} to {now.get(key)!r} (--allow-change {key})")
            continue
        hint = f", or pass --allow-change {key}" if key in CHANGEABLE_ON_RESUME else ""
        raise ConfigError(
            f"{key}: differs from the recipe of checkpoint {path} (checkpoint {then.get(key)!r}, now "
            f"{now.get(key)!r}); resume with the same recipe{hint} or train into a new train.out_dir"
        )


def _load_weights_and_optimizers(run: RunState, state: dict[str, Any], latest: Path) -> None:
    try:
        run.pipeline.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{latest}: its weights do not fit this recipe's pipeline "
                              f"({state_dict_mismatch(exc)}); resume with the recipe that wrote it or train "
                              "into a new train.out_dir") from None
    saved_optimizers = [state["optimizer"], state.get("view_optimizer")][: len(run.optimizers)]
    try:
        for o, saved in zip(run.optimizers, saved_optimizers):
            o.load_state_dict(saved)
        for sched, sched_state in zip(run.schedulers, state["schedulers"]):
            sched.load_state_dict(sched_state)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{latest}: its optimizer state does not fit this recipe's ({exc}); resume with "
                              "the recipe that wrote it or train into a new train.out_dir") from None
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])


def _take_new_rates(run: RunState, fresh: list[list[dict[str, Any]]], *, step: int,
                    lr_factor: Callable[[int], float]) -> None:
    """The loaded groups carry the old rates; the recipe's new ones take over at the schedule's ``step``."""
    for o, groups, sched in zip(run.optimizers, fresh, run.schedulers):
        for group, new in zip(o.param_groups, groups):
            group.update({k: new[k] for k in ("initial_lr", "weight_decay") if k in new})
        sched.base_lrs = [g["initial_lr"] for g in o.param_groups]
        for g in o.param_groups:
            g["lr"] = g["initial_lr"] * lr_factor(step)
        sched._last_lr = [g["lr"] for g in o.param_groups]


def restore(run: RunState, checkpoints: CheckpointDir, *, device: torch.device, rank: int, world_size: int,
            config: Config | None, allow_changes: Sequence[str], lr_factor: Callable[[int], float],
            print_fn: Callable[[str], None]) -> Path | None:
    """Load the newest valid checkpoint into ``run`` and set its position; ``None`` when there is none.

    Example:
        >>> import tempfile
        >>> layer = nn.Linear(2, 2)
        >>> run = RunState(pipeline=layer, model=layer, optimizer=torch.optim.SGD(layer.parameters(), lr=0.1),
        ...                view_optimizer=None, schedulers=[], scaler=None, total_steps=1)
        >>> restore(run, CheckpointDir(Path(tempfile.mkdtemp())), device=torch.device("cpu"), rank=0, world_size=1,
        ...         config=None, allow_changes=(), lr_factor=lambda s: 1.0, print_fn=print) is None
        True
    """
    latest, state, skipped = checkpoints.newest_valid(map_location=device)
    for line in skipped:
        print_fn(f"resume: skipped {line}")
    if latest is None or state is None:
        if skipped:
            raise CheckpointError(f"{skipped[0]}; no valid checkpoint is left in {checkpoints.path} to "
                                  "resume from: train into a new train.out_dir")
        return None
    saved_world = int(state.get("world_size", 1))
    if saved_world != world_size:
        raise ConfigError(
            f"{latest}: written by {saved_world} process(es), resumed with {world_size}; resume "
            f"with torchrun --nproc_per_node {saved_world} (the data order depends on the process count)"
        )
    check_resumable(config, state.get("config"), latest, allow_changes=allow_changes, print_fn=print_fn)
    fresh = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups] for o in run.optimizers]
    _load_weights_and_optimizers(run, state, latest)
    if allow_changes:
        _take_new_rates(run, fresh, step=int(state["step"]), lr_factor=lr_factor)
        print_fn(f"resume: optimizer reloaded from {latest} with the recipe's {', '.join(allow_changes)}")
    ranks_rng = state.get("rng_ranks") or [state["rng"]]
    restore_rng_state(ranks_rng[rank])  # every rank continues its own random stream
    run.step, run.epoch, run.position = int(state["step"]), int(state["epoch"]), int(state["position"])
    return latest
