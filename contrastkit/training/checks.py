"""Pre-flight checks before the first step: the recipe's settings fit the data, the device and the plugins.

``check_labels`` is shared by ``train``, ``eval`` and ``analyze``. Each check raises a one-line :class:`ConfigError` naming the key, the problem and a fix (with the
closest match for a misspelled name) before any training or probing starts.

Example:
    >>> check_labels(["digit"], ("digit", "background"))
    ('digit',)
    >>> check_labels(["digt"], ("digit", "background"))
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: eval.labels: the dataset has no label 'digt'; did you mean 'digit'? (got 'digt')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from contrastkit.config import TrainConfig
from contrastkit.errors import ConfigError, close_matches
from contrastkit.interfaces import EncodedImageSource, describe
from contrastkit.optional_hooks import BatchKeyReader, BatchKeysHint, SupervisedViewMaker

__all__ = ["check_batch_fits", "check_device_settings", "check_labels", "check_required_keys",
           "check_supervised_classes", "check_worker_decoding", "label_keys"]


def label_keys(dataset: Any) -> tuple[str, ...]:
    """The labels a dataset declares (its ``label_keys``; none when it declares none).

    Example:
        >>> class Data:
        ...     label_keys = ("digit",)
        >>> label_keys(Data()), label_keys(object())
        (('digit',), ())
    """
    return tuple(getattr(dataset, "label_keys", ()))


def check_labels(labels: Iterable[str], keys: Iterable[str], *, key: str = "eval.labels",
                 where: str = "the dataset", path: str | None = None) -> tuple[str, ...]:
    """``labels`` as a tuple, each checked to be one of ``keys``; else one line naming ``key``.

    Example:
        >>> check_labels(["x"], (), key="--eval-label", where="the test split")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --eval-label: the test split has no label 'x'; labels: none (got 'x')
    """
    keys = tuple(keys)
    for label in labels:
        if label not in keys:
            matches = close_matches(label, keys)
            hint = f"did you mean {matches[0]!r}?" if matches else f"labels: {', '.join(keys) or 'none'}"
            raise ConfigError(f"{key}: {where} has no label {label!r}; {hint} (got {label!r})", path=path)
    return tuple(labels)


def check_batch_fits(cfg: TrainConfig, dataset_size: int, *, world_size: int = 1) -> None:
    """One step's batches (x accumulation x processes) must fit in the dataset.

    Example:
        >>> check_batch_fits(TrainConfig(batch_size=64), 32)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: train.batch_size: larger than the dataset (32 samples); lower it or enlarge the data (got 64)
    """
    if dataset_size < cfg.batch_size * cfg.accumulate_steps:
        if cfg.accumulate_steps == 1:
            what, got = "larger than the dataset", f"{cfg.batch_size}"
        else:
            what, got = "batch_size x accumulate_steps is larger than the dataset", (
                f"{cfg.batch_size} x {cfg.accumulate_steps}")
        raise ConfigError(f"train.batch_size: {what} ({dataset_size} samples); lower it or enlarge the data (got {got})")
    if world_size > 1 and dataset_size < cfg.batch_size * cfg.accumulate_steps * world_size:
        raise ConfigError(
            f"train.batch_size: {world_size} processes x batch {cfg.batch_size} x {cfg.accumulate_steps} "
            f"accumulation steps is larger than the dataset ({dataset_size} samples); lower batch_size (it is "
            f"per process) or use fewer processes (got {cfg.batch_size})"
        )


def check_worker_decoding(dataset: Any, worker_augmentations: Iterable[Any]) -> None:
    """JPEG bytes decoded on the device cannot feed an augmentation that runs in the DataLoader workers.

    Example:
        >>> check_worker_decoding([], [None, None])
    """
    workers = [a for a in worker_augmentations if a is not None]
    if isinstance(dataset, EncodedImageSource) and dataset.decodes_on_device and workers:
        raise ConfigError(
            f"data.decode: 'device' sends JPEG bytes to the device, but augment {describe(workers[0])!r} runs in "
            "DataLoader workers and needs pixels there; use decode = 'workers' or a device augmentation (got 'device')"
        )


def check_device_settings(cfg: TrainConfig, device: torch.device, *, world_size: int = 1) -> None:
    """Settings the device cannot honour: SyncBatchNorm off CUDA, fp16 autocast on the CPU, no torch.compile.

    Example:
        >>> check_device_settings(TrainConfig(precision="fp16"), torch.device("cpu"))
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: train.precision: fp16 autocast is for GPUs; use 'bf16' on the CPU (got 'fp16')
    """
    if cfg.sync_batchnorm and world_size > 1 and device.type != "cuda":
        raise ConfigError(
            "train.sync_batchnorm: SyncBatchNorm needs CUDA (torch has none for the CPU); set it to false "
            f"or train on GPUs (got true on {device.type})"
        )
    if cfg.precision == "fp16" and device.type == "cpu":
        raise ConfigError("train.precision: fp16 autocast is for GPUs; use 'bf16' on the CPU (got 'fp16')")
    if cfg.compile and not hasattr(torch, "compile"):  # pragma: no cover - torch < 2
        raise ConfigError("train.compile: this torch has no torch.compile; set compile = false (got true)")


def check_required_keys(view_maker: Any, dataset: Any) -> None:
    """A view maker that reads extra batch keys (a :class:`BatchKeyReader`) needs a dataset whose samples have them.

    Example:
        >>> check_required_keys(None, [{"image": 0}])
    """
    required = tuple(view_maker.required_keys) if isinstance(view_maker, BatchKeyReader) else ()
    if not required:
        return
    sample = dataset[0]
    missing = [key for key in required if key not in sample]
    if not missing:
        return
    supervised = view_maker.supervised_label if isinstance(view_maker, SupervisedViewMaker) else None
    source = view_maker.required_keys_hint if isinstance(view_maker, BatchKeysHint) else None  # its own advice
    hint = (
        "set views.supervised_label to one of the dataset's labels"
        if supervised in missing
        else f"choose a dataset that provides it ({source})"
        if source
        else 'choose a dataset that provides it (colorful-moving-digits: set data.pair = ["digit"])'
    )
    raise ConfigError(
        f"views: {describe(view_maker)} reads {', '.join(map(repr, missing))}, which the "
        f"dataset's samples lack (they have {', '.join(map(repr, sorted(sample)))}); {hint}"
    )


def check_supervised_classes(view_maker: Any, dataset: Any) -> None:
    """A supervised view maker's ``num_classes`` must cover its label's values (else CE fails mid-run).

    Read from the dataset's label tensor when it keeps one as an attribute (the built-ins do),
    else from its first samples.

    Example:
        >>> check_supervised_classes(None, [])
    """
    if not isinstance(view_maker, SupervisedViewMaker) or not isinstance(view_maker, BatchKeyReader):
        return
    label, classes = view_maker.supervised_label, view_maker.num_classes
    if label is None or classes is None or label not in tuple(view_maker.required_keys):
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
