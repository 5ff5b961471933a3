"""Data loading for training: the batch sampler, the DataLoader (with worker augmentation) and epoch starts.

The order, the worker seeds and worker-side augmentations depend only on ``(train.seed, epoch)``, so
a resumed run sees exactly the batches the uninterrupted run would have.

Example:
    >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
    >>> data = ColorfulMovingDigits(split="train", size=8, image_size=16)
    >>> loader = make_loader(data, EpochBatchSampler(8, batch_size=4, seed=0), seed=0)
    >>> [tuple(b["image"].shape) for b in start_epoch(loader, 0, seed=0)]
    [(4, 3, 16, 16), (4, 3, 16, 16)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from contrastkit.errors import ConfigError
from contrastkit.interfaces import LabelledBatchSource
from contrastkit.optional_hooks import EpochDataset, SampleAugmentation
from contrastkit.training.samplers import AlternatingBatchSampler, EpochBatchSampler
from contrastkit.training.worker_augmentation import WorkerAugmentedDataset

__all__ = ["dataset_for_loader", "make_loader", "make_sampler", "start_epoch"]

BatchSampler = EpochBatchSampler | AlternatingBatchSampler


def make_sampler(size: int, view_maker: Any, *, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> BatchSampler:
    """This rank's batch sampler: shuffled full batches, or alternating labelled and unlabelled ones
    when the view maker asks for them (a :class:`LabelledBatchSource`).

    Example:
        >>> make_sampler(10, None, batch_size=4, seed=0).batches_per_epoch
        2
    """
    labelled = view_maker.labelled_batch_indices(size) if isinstance(view_maker, LabelledBatchSource) else None
    if labelled is None:
        return EpochBatchSampler(size, batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
    try:
        return AlternatingBatchSampler(size, labelled=labelled, batch_size=batch_size, seed=seed, rank=rank,
                                       world_size=world_size)
    except ValueError as exc:
        raise ConfigError(f"views.labelled_batches: {exc}") from None


def dataset_for_loader(dataset: Any, worker_augmentations: Sequence[SampleAugmentation | None], *, seed: int) -> Any:
    """``dataset``, wrapped so each item carries its per-view copies when an augmentation runs in the workers.

    Example:
        >>> data = [{"image": torch.zeros(3, 4, 4)}]
        >>> dataset_for_loader(data, [None, None], seed=0) is data
        True
    """
    if any(a is not None for a in worker_augmentations):
        return WorkerAugmentedDataset(dataset, worker_augmentations, seed=seed)
    return dataset


def make_loader(dataset: Any, sampler: torch.utils.data.Sampler[list[int]], *, seed: int,
                worker_augmentations: Sequence[SampleAugmentation | None] = (), num_workers: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The DataLoader over ``sampler``'s batches, with its own generator.

    Iterating it never draws from the global RNG the device augmentations use (see :func:`start_epoch`).

    Example:
        >>> loader = make_loader([{"x": torch.tensor(i)} for i in range(4)], EpochBatchSampler(4, batch_size=2, seed=0),
        ...                      seed=0)
        >>> len(list(start_epoch(loader, 1, seed=0)))
        2
    """
    return torch.utils.data.DataLoader(
        dataset_for_loader(dataset, worker_augmentations, seed=seed),
        batch_sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


def start_epoch(loader: torch.utils.data.DataLoader, epoch: int, *, seed: int, start_batch: int = 0) -> Iterator[Any]:
    """Point the loader at ``epoch`` (from batch ``start_batch``) and return its iterator.

    Example:
        >>> loader = make_loader(list(range(6)), EpochBatchSampler(6, batch_size=2, seed=0), seed=0)
        >>> len(list(start_epoch(loader, 0, seed=0, start_batch=2)))
        1
    """
    loader.batch_sampler.set_epoch(epoch, start_batch=start_batch)  # type: ignore[union-attr]
    if isinstance(loader.dataset, EpochDataset):
        loader.dataset.set_epoch(epoch)
    assert loader.generator is not None
    loader.generator.manual_seed(seed * 1_000_003 + epoch)
    return iter(loader)
