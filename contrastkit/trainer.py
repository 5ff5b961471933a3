"""The minimal training loop: optimizer, epochs or ``max_steps``, device selection, TensorBoard, checkpoint.

Metrics stay on the device between log points: the loop syncs with the host once every
``log.every_n_steps`` steps (to write TensorBoard scalars and the progress bar), never every step.

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

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from contrastkit.config import Config, EvalConfig, LogConfig, TrainConfig
from contrastkit.errors import ConfigError, TrainingError, close_matches
from contrastkit.evaluation import KnnResult, knn_probe
from contrastkit.pipeline import Pipeline

__all__ = ["TrainResult", "Trainer", "load_checkpoint", "save_checkpoint", "select_device"]


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


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically: a temp file in the same folder, then rename.

    A crash mid-write leaves the previous checkpoint untouched.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"step": 3}); load_checkpoint(p)["step"]
        3
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs).

    Example:
        >>> import tempfile, pathlib, torch
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
        >>> save_checkpoint(p, {"model": {"w": torch.ones(2)}})
        >>> load_checkpoint(p)["model"]["w"].tolist()
        [1.0, 1.0]
    """
    return torch.load(path, map_location=map_location, weights_only=True)


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
    knn: list[KnnResult]


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
        self.print = print_fn
        self.out_dir = Path(train.out_dir or "runs/default")
        self.device = select_device(train.device)
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
        dataset = self.pipeline.dataset
        if len(dataset) < self.train_cfg.batch_size:
            raise ConfigError(
                f"train.batch_size: larger than the dataset ({len(dataset)} samples); lower it or enlarge the data "
                f"(got {self.train_cfg.batch_size})"
            )
        keys = tuple(getattr(dataset, "label_keys", ()))
        for label in self.eval_cfg.labels or ():
            if label not in keys:
                matches = close_matches(label, keys)
                hint = f"did you mean {matches[0]!r}?" if matches else f"labels: {', '.join(keys) or 'none'}"
                raise ConfigError(f"eval.labels: the dataset has no label {label!r}; {hint} (got {label!r})")

    @property
    def eval_labels(self) -> tuple[str, ...]:
        """The labels the kNN probe reports (``eval.labels``, default every dataset label)."""
        if not self.eval_cfg.knn:
            return ()
        if self.eval_cfg.labels is not None:
            return tuple(self.eval_cfg.labels)
        return tuple(getattr(self.pipeline.dataset, "label_keys", ()))

    # -- pieces --------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.train_cfg
        params = [p for p in self.pipeline.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def make_loader(self) -> torch.utils.data.DataLoader:
        """The training DataLoader: shuffled with a generator seeded by ``train.seed``, full batches only."""
        cfg = self.train_cfg
        generator = torch.Generator().manual_seed(cfg.seed)
        return torch.utils.data.DataLoader(
            self.pipeline.dataset,
            batch_size=cfg.batch_size,
            shuffle=True,
            drop_last=True,  # equal batches: in-batch negatives keep K = B - 1 every step
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.num_workers > 0,
            generator=generator,
        )

    def _writer(self) -> Any:
        if not self.log_cfg.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train, write the final checkpoint, run the kNN probe; returns a :class:`TrainResult`."""
        cfg = self.train_cfg
        torch.manual_seed(cfg.seed)
        pipeline = self.pipeline.to(self.device)
        pipeline.train()
        optimizer = self._optimizer()
        loader = self.make_loader()
        steps_per_epoch = len(loader)
        total_steps = cfg.max_steps if cfg.max_steps is not None else steps_per_epoch * cfg.epochs
        epochs = math.ceil(total_steps / steps_per_epoch)
        writer = self._writer()
        every = self.log_cfg.every_n_steps

        sums: dict[str, torch.Tensor] = {}
        window_steps = 0
        step = 0
        last: dict[str, float] = {}
        start = window_start = time.perf_counter()
        progress = _Progress(total_steps, enabled=self.log_cfg.progress)
        try:
            for epoch in range(epochs):
                for batch in loader:
                    output = pipeline(batch)
                    optimizer.zero_grad(set_to_none=True)
                    output.loss.backward()
                    optimizer.step()
                    step += 1
                    window_steps += 1
                    for name, value in output.metrics.items():  # device-side running sums, no sync
                        sums[name] = sums[name] + value if name in sums else value.clone()
                    if step % every == 0 or step == total_steps:
                        names = list(sums)
                        means = (torch.stack([sums[n] for n in names]) / window_steps).tolist()  # one sync
                        last = dict(zip(names, means))
                        now = time.perf_counter()
                        rate = window_steps * cfg.batch_size / max(now - window_start, 1e-9)
                        if not math.isfinite(last["loss"]):
                            raise TrainingError(
                                f"loss became {last['loss']} between steps {step - window_steps + 1} and {step}; "
                                "lower train.lr or check the data"
                            )
                        if writer is not None:
                            for name, value in last.items():
                                writer.add_scalar(name, value, step)
                            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], step)
                            writer.add_scalar("images_per_second", rate, step)
                        progress.update(step, last["loss"], rate)
                        sums, window_steps, window_start = {}, 0, now
                    if step >= total_steps:
                        break
                if step >= total_steps:
                    break
        finally:
            progress.close()
        seconds = time.perf_counter() - start

        checkpoint = self.out_dir / "checkpoints" / "final.pt"
        save_checkpoint(
            checkpoint,
            {
                "format": 1,
                "step": step,
                "epoch": epoch + 1,
                "model": pipeline.state_dict(),
                "optimizer": optimizer.state_dict(),
                "config": self.config.as_dict() if self.config is not None else None,
                "metrics": last,
            },
        )
        knn: list[KnnResult] = []
        if self.eval_labels:
            knn = knn_probe(
                pipeline,
                pipeline.dataset,
                pipeline.build_dataset("test"),
                labels=self.eval_labels,
                k=self.eval_cfg.knn_k,
                batch_size=cfg.batch_size,
                max_samples=self.eval_cfg.max_samples,
            )
            if writer is not None:
                for result in knn:
                    writer.add_scalar(f"knn/{result.label}_{result.metric}", result.value, step)
        if writer is not None:
            writer.close()
        images_per_second = step * cfg.batch_size / max(seconds, 1e-9)
        return TrainResult(
            steps=step,
            seconds=seconds,
            images_per_second=images_per_second,
            final_metrics=last,
            checkpoint=checkpoint,
            tensorboard_dir=self.out_dir / "tensorboard" if writer is not None else None,
            knn=knn,
        )


class _Progress:
    """A rich progress bar with loss, images/s and ETA; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool) -> None:
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
            self._task = self._bar.add_task("train", total=total, loss="-", rate="-")
            self._bar.start()

    def update(self, step: int, loss: float, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.0f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
