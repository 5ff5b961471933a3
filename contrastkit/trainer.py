"""The training loop: device, precision, optimizers, schedule, logging, checkpoints and resume.

The hot path stays on the device: metrics are summed there and copied to the host once every
``log.every_n_steps`` steps; the NaN/inf guard reads each step's loss one step late (after the
next step is queued), so it never stalls the device yet stops the run within one step. Checkpoints
hold everything the run depends on (weights, optimizers, schedule, grad scaler, every RNG state,
the position in the epoch's data order, memory banks as pipeline buffers), so ``fit(resume=True)``
continues exactly where the run stopped — bit for bit on CPU with ``train.deterministic``.

Example:
    >>> import tempfile
    >>> from contrastkit.config import config_from_dict
    >>> cfg = config_from_dict({
    ...     "data": {"name": "colorful-moving-digits", "size": 64},
    ...     "encoder": {"name": "convnet", "width": 4, "depth": 2},
    ...     "train": {"max_steps": 2, "batch_size": 16, "device": "cpu", "out_dir": tempfile.mkdtemp()},
    ...     "eval": {"knn": False}, "log": {"progress": False}})
    >>> result = Trainer.from_config(cfg).fit()
    >>> result.steps, result.checkpoint.name
    (2, 'final.pt')
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointDir,
    capture_rng_state,
    first_nonfinite,
    load_checkpoint,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
    state_dict_mismatch,
)
from contrastkit.config import Config, EvalConfig, LogConfig, Stage, TrainConfig
from contrastkit.datasets.encoded_images import decode_batch, is_encoded
from contrastkit.errors import CheckpointError, ConfigError, TrainingError, close_matches
from contrastkit.evaluation import KnnResult, evaluate
from contrastkit.interfaces import EncodedImageSource, LabelledBatchSource, describe, is_trainable
from contrastkit.optim import LARS, param_groups, warmup_cosine
from contrastkit.optional_hooks import (
    BatchKeyReader,
    BatchKeysHint,
    DisplayableViews,
    SupervisedViewMaker,
    ViewParameterGroups,
)
from contrastkit.pipeline import Pipeline
from contrastkit.preflight import check_free_space, check_run_dir, checkpoint_bytes
from contrastkit.samplers import AlternatingBatchSampler, EpochBatchSampler

__all__ = [
    "CHANGEABLE_ON_RESUME",
    "EpochBatchSampler",
    "StagedTrainer",
    "TrainResult",
    "Trainer",
    "load_carried_modules",
    "load_checkpoint",
    "save_checkpoint",
    "select_device",
]

# Keys that may change between a run and its resumption (they do not change what is computed).
_RESUMABLE_CHANGES = ("train.max_steps", "train.epochs", "train.out_dir", "train.device", "train.num_workers",
                      "train.checkpoint_every_n_steps", "train.keep_checkpoints", "log.", "eval.")
#: Optimisation settings ``--resume`` accepts changed when named by ``--allow-change`` (e.g. a lower
#: ``train.lr`` after the loss diverged); the resumed optimizer takes the new values.
CHANGEABLE_ON_RESUME = ("train.lr", "train.min_lr", "train.view_maker_lr", "train.warmup_steps", "train.schedule",
                        "train.grad_clip", "train.weight_decay")


def select_device(requested: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must be available.

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: CUDA is not available on this machine; use 'auto' or 'cpu' (got {requested!r})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device: no such GPU; this machine has {torch.cuda.device_count()} (got {requested!r})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device: MPS is not available on this machine; use 'auto' or 'cpu' (got {requested!r})")
    return device


@attrs.frozen
class TrainResult:
    """What :meth:`Trainer.fit` returns (see the module example).

    Example:
        >>> from pathlib import Path
        >>> TrainResult(steps=1, seconds=1.0, images_per_second=8.0, final_metrics={}, checkpoint=Path("c.pt"),
        ...             tensorboard_dir=None, knn=[]).steps
        1
    """

    steps: int
    seconds: float
    images_per_second: float
    final_metrics: dict[str, float]
    checkpoint: Path
    tensorboard_dir: Path | None
    knn: list[Any]
    resumed_from: Path | None = None


class _FiniteGuard:
    """Checks each step's loss is finite, one step late on CUDA (no stall), immediately elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: tuple[int, Tensor, Any] | None = None

    def push(self, step: int, loss: Tensor) -> None:
        if not self.cuda:
            self._check(step, loss)
            return
        host = torch.empty((), dtype=torch.float32, pin_memory=True)
        host.copy_(loss.detach().float(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        previous, self.pending = self.pending, (step, host, event)
        if previous is not None:
            previous[2].synchronize()  # the step before: already done while this one was queued
            self._check(previous[0], previous[1])

    def flush(self) -> None:
        if self.pending is not None:
            step, host, event = self.pending
            self.pending = None
            event.synchronize()
            self._check(step, host)

    @staticmethod
    def _check(step: int, loss: Tensor) -> None:
        value = float(loss)
        if not math.isfinite(value):
            raise _NonFinite(step, value)


class _NonFinite(Exception):
    def __init__(self, step: int, value: float, where: str = "loss") -> None:
        super().__init__(step, value, where)
        self.step, self.value, self.where = step, value, where


def _nonfinite_state(pipeline: nn.Module, optimizers: Sequence[torch.optim.Optimizer]) -> str | None:
    """Which parameter, buffer or optimizer slot holds NaN or inf (``None``: all finite); one host sync."""
    names = {id(p): name for name, p in pipeline.named_parameters()}

    def named() -> Iterator[tuple[str, Tensor]]:
        yield from pipeline.named_parameters()
        yield from pipeline.named_buffers()
        for o in optimizers:
            for param, slots in o.state.items():
                for slot, value in slots.items():
                    if isinstance(value, Tensor):
                        yield f"optimizer {slot} of {names.get(id(param), '<a parameter>')}", value

    return first_nonfinite(named())


class Trainer:
    """Trains a :class:`Pipeline` with the ``[train]``, ``[eval]`` and ``[log]`` settings.

    ``print_fn`` receives the human-readable lines (the CLI prints them; tests may collect them).
    ``from_config`` seeds torch with ``train.seed`` before building, so initial weights are reproducible.

    Example:
        >>> from contrastkit.config import config_from_dict
        >>> cfg = config_from_dict({"data": {"size": 32}, "train": {"batch_size": 8, "device": "cpu"}})
        >>> Trainer.from_config(cfg).device
        device(type='cpu')
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        train: TrainConfig,
        eval: EvalConfig | None = None,
        log: LogConfig | None = None,
        config: Config | None = None,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        if pipeline.dataset is None:
            raise ConfigError("data: training needs a dataset; give the pipeline a data slot")
        self.pipeline = pipeline
        self.train_cfg = train
        self.eval_cfg = eval or EvalConfig()
        self.log_cfg = log or LogConfig()
        self.config = config
        self.out_dir = Path(train.out_dir or "runs/default")
        # Under torchrun: join the process group (nccl on CUDA, gloo otherwise), one GPU per process.
        self.device = distributed.init_from_environment(select_device(train.device))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        #: Rank 0 alone prints, shows progress, writes TensorBoard and checkpoints and runs the probes.
        self.is_main = self.rank == 0
        self.print = print_fn if self.is_main else (lambda _message: None)
        self.checkpoints = CheckpointDir(self.out_dir / "checkpoints", keep=train.keep_checkpoints)
        self._test_dataset: Any = None
        self._validate()

    @classmethod
    def from_config(cls, config: Config, *, path: str | None = None, print_fn: Callable[[str], None] = print) -> Trainer:
        """Build the pipeline and trainer of a recipe (every check runs here, before training)."""
        torch.manual_seed(config.train.seed)  # initial weights follow train.seed
        pipeline = Pipeline.from_config(config, path=path)
        try:
            return cls(pipeline, train=config.train, eval=config.eval, log=config.log, config=config, print_fn=print_fn)
        except ConfigError as exc:
            raise exc.with_path(path) from None

    def _validate(self) -> None:
        cfg = self.train_cfg
        dataset = self.pipeline.dataset
        assert dataset is not None  # checked in __init__
        if len(dataset) < cfg.batch_size * cfg.accumulate_steps:
            if cfg.accumulate_steps == 1:
                what, got = "larger than the dataset", f"{cfg.batch_size}"
            else:
                what, got = "batch_size x accumulate_steps is larger than the dataset", (
                    f"{cfg.batch_size} x {cfg.accumulate_steps}")
            raise ConfigError(
                f"train.batch_size: {what} ({len(dataset)} samples); lower it or enlarge the data (got {got})"
            )
        if self.world_size > 1 and len(dataset) < cfg.batch_size * cfg.accumulate_steps * self.world_size:
            raise ConfigError(
                f"train.batch_size: {self.world_size} processes x batch {cfg.batch_size} x {cfg.accumulate_steps} "
                f"accumulation steps is larger than the dataset ({len(dataset)} samples); lower batch_size (it is "
                f"per process) or use fewer processes (got {cfg.batch_size})"
            )
        self.make_sampler()  # a labelled set too small for one batch fails here, before training
        workers = [a for a in self.pipeline.worker_augmentations if a is not None]
        if isinstance(dataset, EncodedImageSource) and dataset.decodes_on_device and workers:
            raise ConfigError(
                f"data.decode: 'device' sends JPEG bytes to the device, but augment {describe(workers[0])!r} runs in "
                "DataLoader workers and needs pixels there; use decode = 'workers' or a device augmentation (got 'device')"
            )
        if cfg.sync_batchnorm and self.world_size > 1 and self.device.type != "cuda":
            raise ConfigError(
                "train.sync_batchnorm: SyncBatchNorm needs CUDA (torch has none for the CPU); set it to false "
                f"or train on GPUs (got true on {self.device.type})"
            )
        if cfg.precision == "fp16" and self.device.type == "cpu":
            raise ConfigError("train.precision: fp16 autocast is for GPUs; use 'bf16' on the CPU (got 'fp16')")
        if cfg.compile and not hasattr(torch, "compile"):  # pragma: no cover - torch < 2
            raise ConfigError("train.compile: this torch has no torch.compile; set compile = false (got true)")
        keys = tuple(getattr(dataset, "label_keys", ()))
        for label in self.eval_cfg.labels or ():
            if label not in keys:
                matches = close_matches(label, keys)
                hint = f"did you mean {matches[0]!r}?" if matches else f"labels: {', '.join(keys) or 'none'}"
                raise ConfigError(f"eval.labels: the dataset has no label {label!r}; {hint} (got {label!r})")
        maker = self.pipeline.view_maker
        required = tuple(maker.required_keys) if isinstance(maker, BatchKeyReader) else ()
        if required:
            sample = dataset[0]
            missing = [key for key in required if key not in sample]
            if missing:
                supervised = maker.supervised_label if isinstance(maker, SupervisedViewMaker) else None
                source = maker.required_keys_hint if isinstance(maker, BatchKeysHint) else None  # its own advice
                hint = (
                    "set views.supervised_label to one of the dataset's labels"
                    if supervised in missing
                    else f"choose a dataset that provides it ({source})"
                    if source
                    else 'choose a dataset that provides it (colorful-moving-digits: set data.pair = ["digit"])'
                )
                raise ConfigError(
                    f"views: {describe(self.pipeline.view_maker)} reads {', '.join(map(repr, missing))}, which the "
                    f"dataset's samples lack (they have {', '.join(map(repr, sorted(sample)))}); {hint}"
                )
        self._check_supervised_classes(dataset)

    def _check_supervised_classes(self, dataset: Any) -> None:
        """A supervised view maker's ``num_classes`` must cover its label's values (else CE fails mid-run).

        Read from the dataset's label tensor when it keeps one as an attribute (the built-ins do),
        else from its first samples.
        """
        maker = self.pipeline.view_maker
        if not isinstance(maker, SupervisedViewMaker) or not isinstance(maker, BatchKeyReader):
            return
        label, classes = maker.supervised_label, maker.num_classes
        if label is None or classes is None or label not in tuple(maker.required_keys):
            return  # unsupervised, or frozen (the classifiers are not used)
        values = getattr(dataset, label, None)
        if not isinstance(values, Tensor):
            values = torch.stack([torch.as_tensor(dataset[i][label]) for i in range(min(len(dataset), 256))])
        if values.is_floating_point():
            raise ConfigError(
                f"views.supervised_label: {label!r} is a continuous label; the view classifiers need class "
                f"indices (got {label!r})"
            )
        top = int(values.max())
        if top >= classes:
            raise ConfigError(
                f"views.num_classes: label {label!r} has values up to {top}; set num_classes >= {top + 1} "
                f"(got {classes})"
            )

    @property
    def eval_labels(self) -> tuple[str, ...]:
        """The labels the probes report (``eval.labels``, default every dataset label)."""
        if self.eval_cfg.labels is not None:
            return tuple(self.eval_cfg.labels)
        return tuple(getattr(self.pipeline.dataset, "label_keys", ()))

    # -- pieces --------------------------------------------------------------------------------
    def _view_maker_params(self) -> list[nn.Parameter]:
        maker = self.pipeline.view_maker
        return [p for p in maker.parameters() if p.requires_grad] if is_trainable(maker) else []

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        """The model optimizer and, for a trainable view maker, its own Adam optimizer.

        The view maker's gradient already carries its sign (``contrast_sign`` reverses it in the
        pipeline), so both optimizers simply descend: the min-max game needs no special case here.
        """
        cfg = self.train_cfg
        view_params = {id(p) for p in self._view_maker_params()}
        modules = [m for name, m in self.pipeline.named_children() if name != "view_maker"]
        groups = param_groups(
            modules, weight_decay=cfg.weight_decay, decay_norms_and_biases=cfg.weight_decay_norms_and_biases
        )
        for group in groups:
            group["params"] = [p for p in group["params"] if id(p) not in view_params]
        groups = [g for g in groups if g["params"]]
        if not groups:
            raise ConfigError("encoder: the pipeline has no trainable parameters; check the encoder table")
        if cfg.optimizer == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
            )
        elif cfg.optimizer == "lars":
            optimizer = LARS(groups, lr=cfg.lr, momentum=cfg.momentum, trust=cfg.lars_trust, nesterov=cfg.nesterov)
        else:
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        view_optimizer = None
        if view_params:
            view_optimizer = torch.optim.Adam(self._view_maker_groups(cfg.view_maker_lr or cfg.lr))
        return optimizer, view_optimizer

    def _view_maker_groups(self, lr: float) -> list[dict[str, Any]]:
        """The view optimizer's groups: the maker's own ``parameter_groups(lr)`` when it has one, else one group."""
        maker = self.pipeline.view_maker
        params = self._view_maker_params()
        if not isinstance(maker, ViewParameterGroups):
            return [{"params": params, "lr": lr}]
        groups = [g for g in maker.parameter_groups(lr) if g["params"]]
        grouped = [id(p) for g in groups for p in g["params"]]
        if sorted(grouped) != sorted(id(p) for p in params):  # each trainable parameter exactly once
            raise ConfigError(
                f"views: {type(maker).__name__}.parameter_groups() must list each trainable parameter of the "
                "view maker exactly once"
            )
        return groups

    def make_sampler(self) -> EpochBatchSampler | AlternatingBatchSampler:
        """This rank's batch sampler, seeded by ``train.seed``: shuffled full batches, or alternating
        labelled and unlabelled ones when the view maker asks for them (a :class:`LabelledBatchSource`).
        """
        assert self.pipeline.dataset is not None  # checked in __init__
        cfg, size = self.train_cfg, len(self.pipeline.dataset)
        view_maker = self.pipeline.view_maker
        labelled = view_maker.labelled_batch_indices(size) if isinstance(view_maker, LabelledBatchSource) else None
        if labelled is None:
            return EpochBatchSampler(size, batch_size=cfg.batch_size, seed=cfg.seed, rank=self.rank,
                                     world_size=self.world_size)
        try:
            return AlternatingBatchSampler(size, labelled=labelled, batch_size=cfg.batch_size, seed=cfg.seed,
                                           rank=self.rank, world_size=self.world_size)
        except ValueError as exc:
            raise ConfigError(f"views.labelled_batches: {exc}") from None

    def make_loader(self, sampler: EpochBatchSampler | AlternatingBatchSampler | None = None) -> torch.utils.data.DataLoader:
        """The training DataLoader: batches from :meth:`make_sampler` unless ``sampler`` is given.

        Worker-side augmentations (e.g. ``albumentations``) wrap the dataset here so each item
        carries its per-view augmented copies. The loader has its own generator (see
        :meth:`start_epoch`): iterating it never draws from the global RNG the augmentations use.
        """
        cfg = self.train_cfg
        dataset: Any = self.pipeline.dataset
        workers = self.pipeline.worker_augmentations
        if any(a is not None for a in workers):
            from contrastkit.augmentations.workers import WorkerAugmentedDataset

            dataset = WorkerAugmentedDataset(dataset, workers, seed=cfg.seed)
        if sampler is None:
            sampler = self.make_sampler()
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.num_workers > 0,
            generator=torch.Generator().manual_seed(cfg.seed),
        )

    def start_epoch(self, loader: torch.utils.data.DataLoader, epoch: int, *, start_batch: int = 0) -> Iterator[Any]:
        """Point the loader at ``epoch`` (from batch ``start_batch``) and return its iterator.

        The order, the worker seeds and worker-side augmentations depend only on ``(seed, epoch)``,
        so a resumed run sees exactly the batches the uninterrupted run would have.
        """
        seed = self.train_cfg.seed
        loader.batch_sampler.set_epoch(epoch, start_batch=start_batch)  # type: ignore[union-attr]
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        assert loader.generator is not None
        loader.generator.manual_seed(seed * 1_000_003 + epoch)
        return iter(loader)

    def _writer(self) -> Any:
        if not self.log_cfg.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    def _setup_determinism(self) -> None:
        if self.train_cfg.deterministic:
            if self.device.type != "cpu":
                # The CPU kernels contrastkit uses are deterministic already; the switch itself imports
                # torch's compiler stack (seconds), so it is only flipped where it changes kernels.
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        precision = self.train_cfg.precision
        if precision == "32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _check_resumable(self, saved: dict[str, Any] | None, path: Path, allow_changes: Sequence[str]) -> None:
        if saved is None or self.config is None:
            return
        now, then = _flatten(self.config.as_dict()), _flatten(saved)
        for key in sorted(set(now) | set(then)):
            if key.startswith(_RESUMABLE_CHANGES) or now.get(key) == then.get(key):
                continue
            if key in allow_changes:
                self.print(f"resume: {key} changed from {then.get(key)!r} to {now.get(key)!r} (--allow-change {key})")
                continue
            hint = f", or pass --allow-change {key}" if key in CHANGEABLE_ON_RESUME else ""
            raise ConfigError(
                f"{key}: differs from the recipe of checkpoint {path} (checkpoint {then.get(key)!r}, now "
                f"{now.get(key)!r}); resume with the same recipe{hint} or train into a new train.out_dir"
            )

    def preflight(self) -> None:
        """Checks before the first step: the run folder is writable, the disk has room, no stale temp files.

        Raises :class:`CheckpointError` naming ``train.out_dir``'s problem; a short disk is a warning.
        """
        if not self.is_main:
            return
        check_run_dir(self.out_dir)
        for stale in self.checkpoints.remove_stale_tmp():
            self.print(f"removed {stale}, left by a save that was killed mid-write")
        slots = 2 if self.train_cfg.optimizer == "adamw" else 1
        needed = checkpoint_bytes([self.pipeline], optimizer_slots=slots) * (self.train_cfg.keep_checkpoints + 2)
        check_free_space(self.out_dir, needed, warn=self.print)

    def _restore(self, pipeline: Pipeline, optimizers: Sequence[torch.optim.Optimizer], schedulers: Sequence[Any],
                 scaler: Any, *, allow_changes: Sequence[str],
                 lr_factor: Callable[[int], float]) -> tuple[Path, dict[str, Any]] | None:
        """Load the newest valid checkpoint into the run's state; ``None`` when there is none to resume."""
        latest, state, skipped = self.checkpoints.newest_valid(map_location=self.device)
        for line in skipped:
            self.print(f"resume: skipped {line}")
        if latest is None or state is None:
            if skipped:
                raise CheckpointError(f"{skipped[0]}; no valid checkpoint is left in {self.checkpoints.path} to "
                                      "resume from: train into a new train.out_dir")
            return None
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world_size:
            raise ConfigError(
                f"{latest}: written by {saved_world} process(es), resumed with {self.world_size}; resume "
                f"with torchrun --nproc_per_node {saved_world} (the data order depends on the process count)"
            )
        self._check_resumable(state.get("config"), latest, allow_changes)
        fresh = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups] for o in optimizers]
        try:
            pipeline.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{latest}: its weights do not fit this recipe's pipeline "
                                  f"({state_dict_mismatch(exc)}); resume with the recipe that wrote it or train "
                                  "into a new train.out_dir") from None
        saved_optimizers = [state["optimizer"], state.get("view_optimizer")][: len(optimizers)]
        try:
            for o, saved in zip(optimizers, saved_optimizers):
                o.load_state_dict(saved)
            for sched, sched_state in zip(schedulers, state["schedulers"]):
                sched.load_state_dict(sched_state)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{latest}: its optimizer state does not fit this recipe's ({exc}); resume with "
                                  "the recipe that wrote it or train into a new train.out_dir") from None
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if allow_changes:  # the loaded groups carry the old rates; the recipe's new ones take over
            step = int(state["step"])
            for o, groups, sched in zip(optimizers, fresh, schedulers):
                for group, new in zip(o.param_groups, groups):
                    group.update({k: new[k] for k in ("initial_lr", "weight_decay") if k in new})
                sched.base_lrs = [g["initial_lr"] for g in o.param_groups]
                for g in o.param_groups:
                    g["lr"] = g["initial_lr"] * lr_factor(step)
                sched._last_lr = [g["lr"] for g in o.param_groups]
            self.print(f"resume: optimizer reloaded from {latest} with the recipe's {', '.join(allow_changes)}")
        ranks_rng = state.get("rng_ranks") or [state["rng"]]
        restore_rng_state(ranks_rng[self.rank])  # every rank continues its own random stream
        return latest, state

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, *, resume: bool = False, allow_changes: Sequence[str] = ()) -> TrainResult:
        """Train, write checkpoints, run the probes; returns a :class:`TrainResult`.

        :meth:`preflight` runs first. ``allow_changes`` (keys of :data:`CHANGEABLE_ON_RESUME`) may
        differ from the checkpoint's recipe on resume; the optimizer then takes the new values.
        ``resume=True`` continues from the newest valid checkpoint in ``<out_dir>/checkpoints`` (a fresh
        start when there is none). A NaN or inf loss raises :class:`TrainingError` naming the step;
        the checkpoints written before it stay loadable.
        """
        cfg = self.train_cfg
        for key in allow_changes:
            if key not in CHANGEABLE_ON_RESUME:
                matches = close_matches(key, CHANGEABLE_ON_RESUME)
                hint = f"did you mean {matches[0]!r}?" if matches else f"one of {', '.join(CHANGEABLE_ON_RESUME)}"
                raise ConfigError(f"--allow-change: {key!r} cannot change on resume; {hint}")
        self.preflight()
        self._setup_determinism()
        pipeline = self.pipeline.to(self.device)
        if cfg.channels_last:
            pipeline.to(memory_format=torch.channels_last)
            pipeline.memory_format = torch.channels_last
        if cfg.sync_batchnorm and self.world_size > 1:
            # Before the optimizers: the conversion makes new batch norm modules (new parameters).
            nn.SyncBatchNorm.convert_sync_batchnorm(pipeline)
        pipeline.train()
        optimizer, view_optimizer = self._optimizers()
        model = self._data_parallel(pipeline)
        optimizers = [o for o in (optimizer, view_optimizer) if o is not None]
        scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None

        sampler = self.make_sampler()
        steps_per_epoch = sampler.batches_per_epoch // cfg.accumulate_steps
        total_steps = cfg.max_steps if cfg.max_steps is not None else steps_per_epoch * cfg.epochs

        def lr_factor(step: int) -> float:
            return warmup_cosine(
                step, total_steps=total_steps, warmup_steps=cfg.warmup_steps, min_ratio=cfg.min_lr / cfg.lr,
                schedule=cfg.schedule,
            )

        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lr_factor) for o in optimizers]

        step, epoch, position = 0, 0, 0  # position: batches of the current epoch already consumed
        resumed_from: Path | None = None
        # Each rank draws its own augmentations (rank 0 keeps train.seed: one process is unchanged).
        torch.manual_seed(cfg.seed + 1_000_003 * self.rank)
        if self.world_size > 1:
            self.print(
                f"distributed: {self.world_size} processes ({torch.distributed.get_backend()}), batch {cfg.batch_size} "
                f"per process x {cfg.accumulate_steps} accumulation -> effective batch "
                f"{cfg.batch_size * cfg.accumulate_steps * self.world_size}"
            )
        restored = None
        if resume:
            restored = self._restore(pipeline, optimizers, schedulers, scaler, allow_changes=allow_changes,
                                     lr_factor=lr_factor)
        elif allow_changes:
            raise ConfigError("--allow-change: only applies with --resume")
        if restored is not None:
            resumed_from, state = restored
            step, epoch, position = int(state["step"]), int(state["epoch"]), int(state["position"])
            self.print(f"resuming from {resumed_from} at step {step} (epoch {epoch + 1}, batch {position})")
        if cfg.compile:
            for encoder in pipeline.encoders:
                encoder.compile()

        writer = self._writer() if self.is_main else None
        every = self.log_cfg.every_n_steps
        images_every = self.log_cfg.images_every_n_steps
        guard = _FiniteGuard(self.device)
        params = [p for group in optimizer.param_groups for p in group["params"]] + self._view_maker_params()

        def payload(complete: bool) -> dict[str, Any]:
            # Called on every rank (the RNG gather is a collective); only rank 0 writes it.
            guard.flush()  # never write weights that came from a non-finite step
            bad = _nonfinite_state(pipeline, optimizers)  # nor a finite loss over inf statistics or moments
            if bad is not None:
                raise _NonFinite(step, float("nan"), where=bad)
            rng = capture_rng_state()
            return {
                "world_size": self.world_size,
                "rng_ranks": distributed.all_gather_objects(rng) if self.world_size > 1 else None,
                "format": CHECKPOINT_FORMAT,
                "step": step,
                "epoch": epoch,
                "position": position,
                "complete": complete,
                "model": pipeline.state_dict(),
                "optimizer": optimizer.state_dict(),
                "view_optimizer": view_optimizer.state_dict() if view_optimizer is not None else None,
                "schedulers": [s.state_dict() for s in schedulers],
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rng,
                "config": self.config.as_dict() if self.config is not None else None,
                "metrics": dict(last),
            }

        sums: dict[str, Tensor] = {}
        window_steps, window_wait = 0, 0.0
        last: dict[str, float] = {}
        knn: list[Any] = []
        start_step = step
        start = window_start = time.perf_counter()
        progress = _Progress(total_steps, enabled=self.log_cfg.progress and self.is_main, completed=step)
        checkpoint = self.checkpoints.final
        try:
            if step >= total_steps and resumed_from is not None:
                self.print(f"nothing to resume: {resumed_from} already holds step {step} of {total_steps}")
            loader = self.make_loader(sampler)
            while step < total_steps:
                batches = self.start_epoch(loader, epoch, start_batch=position)
                micro = 0
                step_loss: Tensor | None = None
                while step < total_steps:
                    wait_start = time.perf_counter()
                    batch = next(batches, None)
                    window_wait += time.perf_counter() - wait_start
                    if batch is None:
                        break
                    # DDP all-reduces gradients on the last micro-batch of an accumulation only.
                    last_micro = (micro + 1) % cfg.accumulate_steps == 0
                    # model is DistributedDataParallel when it is not the pipeline: it has no_sync().
                    sync = contextlib.nullcontext() if last_micro or model is pipeline else model.no_sync()  # type: ignore[operator]
                    with sync:
                        with self._autocast():
                            output = model(batch)
                        loss = output.loss.float()
                        scaled = loss / cfg.accumulate_steps
                        (scaler.scale(scaled) if scaler is not None else scaled).backward()
                    step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                    for name, value in output.metrics.items():  # device-side running sums, no sync
                        value = value.float() / cfg.accumulate_steps
                        sums[name] = sums[name] + value if name in sums else value.clone()
                    micro += 1
                    if micro % cfg.accumulate_steps:
                        continue
                    if scaler is not None:
                        for o in optimizers:
                            scaler.unscale_(o)
                    if cfg.grad_clip is not None:
                        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                        sums["grad_norm"] = sums["grad_norm"] + norm if "grad_norm" in sums else norm.detach().clone()
                    for o in optimizers:
                        if scaler is not None:
                            scaler.step(o)
                        else:
                            o.step()
                        o.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.update()
                    pipeline.update_momentum()  # EMA key/target encoder (MoCo, ReLIC); no-op without one
                    for s in schedulers:
                        s.step()
                    assert step_loss is not None
                    guard.push(step + 1, step_loss)
                    step_loss = None
                    step += 1
                    position += cfg.accumulate_steps
                    window_steps += 1

                    if images_every and writer is not None and (step == start_step + 1 or step % images_every == 0):
                        _log_views(writer, output.views, step)
                        _log_learned_views(writer, pipeline, batch, step)
                    if step % every == 0 or step == total_steps:
                        now = time.perf_counter()
                        names = list(sums)
                        means = (torch.stack([sums[n] for n in names]) / window_steps).tolist()  # one sync
                        bad = _nonfinite_state(pipeline, optimizers)  # the log step syncs anyway
                        if bad is not None:
                            raise _NonFinite(step, float("nan"), where=bad)
                        last = dict(zip(names, means))
                        elapsed = max(now - window_start, 1e-9)
                        rate = window_steps * cfg.batch_size * cfg.accumulate_steps / elapsed
                        if writer is not None:
                            for name, value in last.items():
                                writer.add_scalar(name, value, step)
                            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], step)
                            writer.add_scalar("images_per_second", rate, step)
                            writer.add_scalar("data_wait_fraction", min(window_wait / elapsed, 1.0), step)
                            if scaler is not None:
                                writer.add_scalar("grad_scale", scaler.get_scale(), step)
                        progress.update(step, last.get("loss", float("nan")), rate)
                        sums, window_steps, window_wait, window_start = {}, 0, 0.0, now
                    if cfg.checkpoint_every_n_steps and step % cfg.checkpoint_every_n_steps == 0:
                        self._save(payload(complete=False), step=step)
                else:
                    break  # total_steps reached mid-epoch
                if micro % cfg.accumulate_steps:  # an incomplete accumulation does not leak into the next epoch
                    for o in optimizers:
                        o.zero_grad(set_to_none=True)
                epoch, position = epoch + 1, 0
                if step < total_steps:
                    self._save(payload(complete=False), step=step)
                if self.eval_cfg.knn_every_n_epochs and epoch % self.eval_cfg.knn_every_n_epochs == 0:
                    guard.flush()
                    if self.is_main:
                        knn = self._knn(pipeline, cfg.batch_size)
                        for result in knn:
                            if writer is not None:
                                writer.add_scalar(f"knn/{result.label}_{result.metric}", result.value, step)
                        pipeline.train()
                    distributed.barrier()
            guard.flush()
        except _NonFinite as exc:
            raise self._stopped(exc) from None
        finally:
            progress.close()
            if writer is not None:
                writer.flush()
        seconds = time.perf_counter() - start

        # A resume from a periodic file at the end (final.pt broken or older) writes final.pt again.
        if step > start_step or resumed_from is None or resumed_from != self.checkpoints.final:
            try:
                final = payload(complete=True)
            except _NonFinite as exc:
                raise self._stopped(exc) from None
            if self.is_main:
                checkpoint = self.checkpoints.save_final(final)
            distributed.barrier()
        if (self.eval_cfg.knn or self.eval_cfg.linear) and self.eval_labels and self.is_main:
            knn = self._knn(pipeline, cfg.batch_size, knn=self.eval_cfg.knn, linear=self.eval_cfg.linear)
            if writer is not None:
                for result in knn:
                    writer.add_scalar(f"{result.probe}/{result.label}_{result.metric}", result.value, step)
        distributed.barrier()  # the other ranks wait for rank 0's probes, then all leave together
        if writer is not None:
            if self.log_cfg.projector_samples:
                self._log_projector(writer, pipeline, step)
            writer.close()
        done = step - start_step
        images_per_second = done * cfg.batch_size * cfg.accumulate_steps / max(seconds, 1e-9)
        return TrainResult(
            steps=step,
            seconds=seconds,
            images_per_second=images_per_second,
            final_metrics=last,
            checkpoint=checkpoint,
            tensorboard_dir=self.out_dir / "tensorboard" if writer is not None else None,
            knn=knn,
            resumed_from=resumed_from,
        )

    def _stopped(self, exc: _NonFinite) -> TrainingError:
        """The one line for a non-finite loss or state: what, when, and the checkpoint to go back to."""
        kept, _, _ = self.checkpoints.newest_valid()
        what = f"loss became {exc.value}" if exc.where == "loss" else f"{exc.where} became NaN or inf"
        if kept is None:
            return TrainingError(f"{what} at step {exc.step}; stopped (no checkpoint was written yet); lower "
                                 "train.lr, set train.grad_clip or check the data")
        return TrainingError(
            f"{what} at step {exc.step}; stopped (the last good checkpoint is {kept}); resume from it with a "
            "lower rate: --resume --set train.lr=... --allow-change train.lr (or set train.grad_clip)"
        )

    def _save(self, payload: dict[str, Any], *, step: int) -> None:
        """Rank 0 writes a checkpoint; every rank waits for it, so none runs ahead of a save."""
        if self.is_main:
            self.checkpoints.save(payload, step=step)
        distributed.barrier()

    def _data_parallel(self, pipeline: Pipeline) -> nn.Module:
        """``DistributedDataParallel`` around the pipeline under ``torchrun`` (the pipeline itself otherwise).

        One wrapper for the encoders, the critic's heads and a trainable view maker: every parameter
        that needs a gradient is all-reduced (averaged) after each backward. Buffers are not
        broadcast at each forward: the memory bank, the queue and NCE's Z are kept identical by the
        samplers' own all-gathers, and batch norm statistics stay per rank unless
        ``train.sync_batchnorm``. Checkpoints store the unwrapped pipeline, so ``eval`` and ``export``
        read them as a one-process run's.
        """
        if self.world_size == 1 or not any(p.requires_grad for p in pipeline.parameters()):
            return pipeline
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers are synced once, at wrapping (every rank built the same pipeline anyway), not per forward.
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
            return DistributedDataParallel(pipeline, device_ids=device_ids, forward_sync_buffers=False)
        return DistributedDataParallel(pipeline, device_ids=device_ids, broadcast_buffers=False)

    def _knn(self, pipeline: Pipeline, batch_size: int, *, knn: bool = True, linear: bool = False) -> list[KnnResult]:
        """The kNN probe (and the linear probe when ``linear``) on the test split, per ``eval.labels``."""
        if not self.eval_labels:
            return []
        if self._test_dataset is None:  # built once: online kNN runs every few epochs
            self._test_dataset = pipeline.build_dataset("test")
        assert pipeline.dataset is not None  # the Trainer checked it
        return evaluate(
            pipeline,
            pipeline.dataset,
            self._test_dataset,
            labels=self.eval_labels,
            knn=knn,
            linear=linear,
            k=self.eval_cfg.knn_k,
            temperature=self.eval_cfg.knn_temperature,
            epochs=self.eval_cfg.linear_epochs,
            batch_size=batch_size,
            max_samples=self.eval_cfg.max_samples,
            seed=self.train_cfg.seed,
        )

    def _log_projector(self, writer: Any, pipeline: Pipeline, step: int) -> None:
        """TensorBoard's embedding projector on a held-out batch: features, labels and thumbnails."""
        dataset = pipeline.build_dataset("test")
        n = min(self.log_cfg.projector_samples, len(dataset))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=n)
        batch = next(iter(loader))
        if is_encoded(batch):  # thumbnails need pixels
            batch = decode_batch(batch, torch.device("cpu"))
        was_training = pipeline.training
        pipeline.eval()
        features = pipeline.features(batch).float().cpu()
        pipeline.train(was_training)
        keys = [k for k in getattr(dataset, "label_keys", ()) if k in batch]
        metadata = None
        if keys:
            columns = [[_label_text(v) for v in batch[k]] for k in keys]
            metadata = [list(row) for row in zip(*columns)] if len(keys) > 1 else columns[0]
        image = batch["image"]
        thumbnails = None
        if image.ndim == 4 and image.shape[1] in (1, 3):
            thumbnails = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        writer.add_embedding(
            features,
            metadata=metadata,
            metadata_header=list(keys) if len(keys) > 1 else None,
            label_img=thumbnails,
            global_step=step,
            tag="features",
        )


def load_carried_modules(pipeline: Pipeline, checkpoint: Path, modules: list[str], *, where: str = "carry") -> None:
    """Load the weights of the pipeline's top-level ``modules`` (e.g. ``view_maker``) from ``checkpoint``.

    Everything else keeps its (fresh) initialisation. ``requires_grad`` is untouched, so a frozen
    view maker stays frozen. A module missing from the checkpoint or of another shape is a
    :class:`ConfigError` naming ``where``.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> src, dst = Pipeline(encoder={"name": "convnet", "width": 4}), Pipeline(encoder={"name": "convnet", "width": 4})
        >>> path = Path(tempfile.mkdtemp()) / "final.pt"
        >>> save_checkpoint(path, {"model": src.state_dict()})
        >>> load_carried_modules(dst, path, ["critic"])
        >>> all(torch.equal(a, b) for a, b in zip(src.critic.state_dict().values(), dst.critic.state_dict().values()))
        True
    """
    children = dict(pipeline.named_children())
    state = read_checkpoint(checkpoint)["model"]
    for name in modules:
        if name not in children:
            raise ConfigError(
                f"{where}: the pipeline has no module {name!r}; modules: {', '.join(sorted(children))} (got {name!r})"
            )
        prefix = name + "."
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            children[name].load_state_dict(sub, strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"{where}: {name!r} in {checkpoint} does not fit this stage's {name}; the stages must build the "
                f"same {name} ({state_dict_mismatch(exc)})"
            ) from None


class StagedTrainer:
    """Trains the stages of a ``[[stages]]`` recipe in order, each a :class:`Trainer` run of its own.

    Every stage's pipeline and trainer are built (and checked) before the first step, each seeded
    by its ``train.seed``: the modules a stage does not ``carry`` start from that fresh
    initialisation, the carried ones from the previous stage's ``final.pt``. ``fit(resume=True)``
    skips stages whose ``final.pt`` exists and resumes the interrupted one.

    Example:
        >>> import tempfile
        >>> from contrastkit.config import stages_from_dict
        >>> raw = {"data": {"size": 32}, "encoder": {"width": 4, "depth": 2}, "eval": {"knn": False},
        ...        "log": {"progress": False, "tensorboard": False},
        ...        "train": {"max_steps": 1, "batch_size": 8, "device": "cpu", "out_dir": tempfile.mkdtemp()},
        ...        "stages": [{"name": "one"}, {"name": "two", "carry": ["critic"]}]}
        >>> results = StagedTrainer(stages_from_dict(raw), print_fn=lambda _: None).fit()
        >>> [(r.steps, r.checkpoint.parent.parent.name) for r in results]
        [(1, 'one'), (1, 'two')]
    """

    def __init__(self, stages: list[Stage], *, path: str | None = None, print_fn: Callable[[str], None] = print) -> None:
        if not stages:
            raise ConfigError("stages: the recipe has no [[stages]]; train it with Trainer", path=path)
        self.stages = stages
        self.path = path
        self.print = print_fn
        self.trainers: list[Trainer] = []
        for stage in stages:
            where = f"stages[{stage.index}] ({stage.name})"
            try:
                trainer = Trainer.from_config(stage.config, print_fn=print_fn)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc.message}", path=path) from None
            children = {name for name, _ in trainer.pipeline.named_children()}
            for name in stage.entry.carry:
                if name not in children:
                    raise ConfigError(
                        f"stages[{stage.index}].carry: the pipeline has no module {name!r}; modules: "
                        f"{', '.join(sorted(children))} (got {name!r})",
                        path=path,
                    )
            self.trainers.append(trainer)

    def fit(self, *, resume: bool = False, allow_changes: Sequence[str] = ()) -> list[TrainResult]:
        """Run every stage (skipping finished ones when ``resume``); one :class:`TrainResult` per stage.

        ``allow_changes`` is passed to each resumed stage's :meth:`Trainer.fit`.
        """
        results: list[TrainResult] = []
        for stage, trainer in zip(self.stages, self.trainers):
            header = f"stage {stage.index + 1}/{stage.count} {stage.name} -> {trainer.out_dir}"
            final = trainer.checkpoints.final
            if resume and final.is_file() and not stage.is_last:
                state = read_checkpoint(final)
                self.print(f"{header}: finished ({final}), skipped")
                results.append(TrainResult(
                    steps=int(state.get("step", 0)), seconds=0.0, images_per_second=0.0,
                    final_metrics=dict(state.get("metrics") or {}), checkpoint=final, tensorboard_dir=None,
                    knn=[], resumed_from=final,
                ))
                continue
            if stage.entry.carry:
                previous = self.trainers[stage.index - 1].checkpoints.final
                if not previous.is_file():
                    raise ConfigError(
                        f"stages[{stage.index}].carry: the previous stage's final checkpoint {previous} is missing; "
                        "train the stages in order (or --resume)", path=self.path,
                    )
                load_carried_modules(trainer.pipeline, previous, list(stage.entry.carry),
                                     where=f"stages[{stage.index}].carry")
                self.print(f"{header} (carrying {', '.join(stage.entry.carry)} from {previous})")
            else:
                self.print(header)
            results.append(trainer.fit(resume=resume, allow_changes=allow_changes if resume else ()))
        return results


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _label_text(value: Tensor) -> str:
    return str(value.item()) if value.numel() == 1 else " ".join(f"{v:.1f}" for v in value.tolist())


def _log_views(writer: Any, views: list[Tensor], step: int, *, max_images: int = 16) -> None:
    """An image grid per view: RGB views as colour, other channel counts one grey tile per channel.

    Each tile is min-max scaled on its own, since views live in different ranges (L, ab, depth, ...).
    """
    for i, view in enumerate(views):
        images = view[:max_images].detach().float().cpu()
        if images.shape[1] != 3:
            images = images.reshape(-1, 1, *images.shape[-2:])
        flat = images.flatten(1)
        low = flat.min(dim=1).values.view(-1, 1, 1, 1)
        high = flat.max(dim=1).values.view(-1, 1, 1, 1)
        images = (images - low) / (high - low).clamp_min(1e-8)
        writer.add_images(f"views/v{i + 1}", images, step)


def _log_learned_views(writer: Any, pipeline: Pipeline, batch: Any, step: int, *, max_images: int = 16) -> None:
    """A learned view maker's views as images (``learned_views_for_display``), next to the input images.

    The per-tile min-max grid of :func:`_log_views` shows each channel on its own; this shows each
    learned view as one picture (grey, or red/green for two channels) scaled over the batch, so the
    colours are comparable across images and steps, with the un-augmented input beside them.
    """
    if not isinstance(pipeline.view_maker, DisplayableViews):
        return
    display = pipeline.view_maker.learned_views_for_display
    image = (decode_batch(batch, pipeline.device) if is_encoded(batch) else batch)["image"][:max_images]
    images = pipeline.prepare_batch({"image": image})["image"]
    writer.add_images("learned_views/input", images.detach().float().cpu().clamp(0, 1), step)
    for i, view in enumerate(display(images)):
        writer.add_images(f"learned_views/v{i + 1}", view.detach().float().cpu(), step)


class _Progress:
    """A rich progress bar with loss, images/s and ETA; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool, completed: int = 0) -> None:
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} img/s"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("train", total=total, completed=completed, loss="-", rate="-")
            self._bar.start()

    def update(self, step: int, loss: float, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.0f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

