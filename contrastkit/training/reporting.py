"""What a run reports: the progress bar, the metric window, TensorBoard scalars, view images and the projector.

The hot path sums metrics on the device; :class:`MetricWindow` copies them to the host once per
``log.every_n_steps`` window (one sync), so logging never stalls the steps in between.

Example:
    >>> window = MetricWindow()
    >>> for loss in (2.0, 4.0):
    ...     window.add({"loss": torch.tensor(loss)}); window.end_step()
    >>> window.close(images_per_step=8)[0]
    {'loss': 3.0}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit.datasets.encoded_images import decode_batch, is_encoded
from contrastkit.optional_hooks import DisplayableViews
from contrastkit.pipeline import Pipeline

__all__ = ["MetricWindow", "Progress", "log_learned_views", "log_projector", "log_views", "make_writer", "write_scalars"]


class MetricWindow:
    """Device-side running sums of the step metrics, and the time and data wait of the current window.

    Example:
        >>> window = MetricWindow()
        >>> window.add({"loss": torch.tensor(1.0)}); window.end_step()
        >>> means, rate, wait = window.close(images_per_step=4)
        >>> means, window.steps
        ({'loss': 1.0}, 0)
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.steps = 0
        self.wait = 0.0
        self.start = time.perf_counter()

    def add(self, metrics: Mapping[str, Tensor], *, accumulate_steps: int = 1) -> None:
        """Add one micro-batch's metrics (over ``accumulate_steps``) to the sums, on the device: no sync."""
        for name, value in metrics.items():
            value = value.float() / accumulate_steps
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()

    def end_step(self) -> None:
        """Count one optimizer step (its micro-batches were added) into the window."""
        self.steps += 1

    def add_grad_norm(self, norm: Tensor) -> None:
        """Add a step's gradient norm (the clipping already computed it)."""
        self.sums["grad_norm"] = self.sums["grad_norm"] + norm if "grad_norm" in self.sums else norm.detach().clone()

    def close(self, *, images_per_step: int) -> tuple[dict[str, float], float, float]:
        """The window's means (one host sync), images per second and data-wait fraction; starts the next window."""
        now = time.perf_counter()
        names = list(self.sums)
        means = (torch.stack([self.sums[n] for n in names]) / self.steps).tolist() if names else []
        elapsed = max(now - self.start, 1e-9)
        rate = self.steps * images_per_step / elapsed
        wait = min(self.wait / elapsed, 1.0)
        self.sums, self.steps, self.wait, self.start = {}, 0, 0.0, now
        return dict(zip(names, means)), rate, wait


def make_writer(out_dir: Path, *, enabled: bool) -> Any:
    """A TensorBoard ``SummaryWriter`` into ``<out_dir>/tensorboard`` (``None`` when disabled).

    Example:
        >>> make_writer(Path("unused"), enabled=False) is None
        True
    """
    if not enabled:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


def write_scalars(writer: Any, step: int, values: Mapping[str, float]) -> None:
    """Each of ``values`` as a TensorBoard scalar at ``step`` (nothing without a writer).

    Example:
        >>> class Writer:
        ...     def add_scalar(self, tag, value, step): print(tag, value, step)
        >>> write_scalars(Writer(), 5, {"loss": 0.5, "lr": 0.1})
        loss 0.5 5
        lr 0.1 5
        >>> write_scalars(None, 5, {"loss": 0.5})
    """
    if writer is None:
        return
    for name, value in values.items():
        writer.add_scalar(name, value, step)


def _label_text(value: Tensor) -> str:
    return str(value.item()) if value.numel() == 1 else " ".join(f"{v:.1f}" for v in value.tolist())


def log_views(writer: Any, views: list[Tensor], step: int, *, max_images: int = 16) -> None:
    """An image grid per view: RGB views as colour, other channel counts one grey tile per channel.

    Each tile is min-max scaled on its own, since views live in different ranges (L, ab, depth, ...).

    Example:
        >>> class Writer:
        ...     def add_images(self, tag, images, step): print(tag, tuple(images.shape))
        >>> log_views(Writer(), [torch.rand(2, 3, 4, 4), torch.rand(2, 2, 4, 4)], step=1)
        views/v1 (2, 3, 4, 4)
        views/v2 (4, 1, 4, 4)
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


def log_learned_views(writer: Any, pipeline: Pipeline, batch: Any, step: int, *, max_images: int = 16) -> None:
    """A learned view maker's views as images (``learned_views_for_display``), next to the input images.

    The per-tile min-max grid of :func:`log_views` shows each channel on its own; this shows each
    learned view as one picture (grey, or red/green for two channels) scaled over the batch, so the
    colours are comparable across images and steps, with the un-augmented input beside them.

    Example:
        >>> log_learned_views(None, Pipeline(encoder={"name": "convnet", "width": 4}), {}, step=1)  # not learned: nothing
    """
    if not isinstance(pipeline.view_maker, DisplayableViews):
        return
    display = pipeline.view_maker.learned_views_for_display
    image = (decode_batch(batch, pipeline.device) if is_encoded(batch) else batch)["image"][:max_images]
    images = pipeline.prepare_batch({"image": image})["image"]
    writer.add_images("learned_views/input", images.detach().float().cpu().clamp(0, 1), step)
    for i, view in enumerate(display(images)):
        writer.add_images(f"learned_views/v{i + 1}", view.detach().float().cpu(), step)


def log_projector(writer: Any, pipeline: Pipeline, step: int, *, samples: int) -> None:
    """TensorBoard's embedding projector on held-out samples: features, labels and thumbnails.

    Example:
        >>> class Writer:
        ...     def add_embedding(self, features, **kw): print(tuple(features.shape), kw["metadata"][:2])
        >>> pipeline = Pipeline(data={"name": "colorful-moving-digits", "size": 8, "image_size": 16},
        ...                     encoder={"name": "convnet", "width": 4})
        >>> log_projector(Writer(), pipeline, step=1, samples=4)  # doctest: +ELLIPSIS
        (4, ...) [[...], [...]]
    """
    dataset = pipeline.build_dataset("test")
    n = min(samples, len(dataset))
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
    writer.add_embedding(features, metadata=metadata, metadata_header=list(keys) if len(keys) > 1 else None,
                         label_img=thumbnails, global_step=step, tag="features")


class Progress:
    """A rich progress bar with loss, images/s and ETA; silent when disabled.

    Example:
        >>> bar = Progress(10, enabled=False)
        >>> bar.update(1, 0.5, 100.0); bar.close()
    """

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
        """Show ``step``, the window's mean loss and images/s."""
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.0f}")

    def close(self) -> None:
        """Stop the bar (leaving its last line)."""
        if self._bar is not None:
            self._bar.stop()
