"""Batch samplers of the training loader: whole shuffled batches whose order depends only on ``(seed, epoch)``.

:class:`EpochBatchSampler` is the default. :class:`AlternatingBatchSampler` is InfoMin's
semi-supervised schedule ("labeled batch and unlabeled batch are iteratively used", seed 000): the
trainer uses it when the view maker is a :class:`~contrastkit.interfaces.LabelledBatchSource` that
names its labelled samples. Both regenerate an epoch from ``(seed, epoch)`` and can start mid-epoch,
which is what makes resuming exact.

Example:
    >>> import torch
    >>> sampler = AlternatingBatchSampler(12, labelled=torch.tensor([0, 1, 2, 3]), batch_size=2, seed=0)
    >>> [all(i < 4 for i in batch) for batch in sampler]  # labelled, unlabelled, labelled, ...
    [True, False, True, False, True, False, True, False]
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["AlternatingBatchSampler", "EpochBatchSampler"]


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _check_rank(rank: int, world_size: int) -> tuple[int, int]:
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    return rank, world_size


def _rank_slices(global_batches: Tensor, *, start_batch: int, rank: int, batch_size: int) -> Iterator[list[int]]:
    """This rank's slice of each global batch ``[N, world_size * batch_size]``, from batch ``start_batch``."""
    mine = slice(rank * batch_size, (rank + 1) * batch_size)
    for batch in global_batches[start_batch:, mine]:
        yield batch.tolist()


class EpochBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Full shuffled batches whose order depends only on ``(seed, epoch)``; can start mid-epoch.

    That is what makes resuming exact: the run's position is ``(epoch, batches done)`` and the
    remaining batches are regenerated, not replayed. Runs in the main process, so it works with
    persistent DataLoader workers.

    Distributed (``world_size = W > 1``): every rank draws the same permutation, cut into *global*
    batches of ``W * batch_size``; rank ``r`` takes the ``r``-th slice of each. So ``W`` processes
    with batch ``B`` see exactly the samples one process with batch ``W * B`` sees, step by step
    (what makes a distributed run comparable with a single-process one), and the position to resume
    from is the same number on every rank.

    Example:
        >>> s = EpochBatchSampler(10, batch_size=4, seed=0)
        >>> len(s), len(list(s))
        (2, 2)
        >>> first = list(s); s.set_epoch(0, start_batch=1); list(s) == first[1:]
        True
        >>> whole = list(EpochBatchSampler(10, batch_size=4, seed=0))
        >>> halves = [list(EpochBatchSampler(10, batch_size=2, seed=0, rank=r, world_size=2)) for r in (0, 1)]
        >>> [a + b for a, b in zip(*halves)] == whole
        True
    """

    def __init__(self, size: int, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = _check_rank(rank, world_size)
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, *, start_batch: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start_batch`` batches."""
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def batches_per_epoch(self) -> int:
        """Full (global) batches in one epoch (a last partial batch is dropped: K stays B - 1)."""
        return self.size // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        generator = _epoch_generator(self.seed, self.epoch)
        order = torch.randperm(self.size, generator=generator)
        global_batch = self.batch_size * self.world_size
        n = self.batches_per_epoch * global_batch
        yield from _rank_slices(order[:n].view(-1, global_batch), start_batch=self.start_batch, rank=self.rank,
                                batch_size=self.batch_size)


class AlternatingBatchSampler(torch.utils.data.Sampler[list[int]]):
    """A whole batch of labelled samples, then a whole batch of unlabelled ones, in turn (InfoMin).

    Semi-supervised view learning adds its cross-entropy term only on labelled batches; mixing a
    small labelled fraction into every batch leaves a handful of labelled images per step, too few
    for the classifiers to learn from. Here each unlabelled sample is seen once per epoch and the
    labelled set (usually much smaller) is cycled, reshuffled each pass, to pair every unlabelled
    batch with a labelled one: an epoch is ``2 * (len(unlabelled) // (batch_size * world_size))``
    batches, labelled first. A labelled pass drops its last partial batch, so no batch repeats a
    sample. Distributed ranks slice global batches as :class:`EpochBatchSampler` does.

    Example:
        >>> import torch
        >>> s = AlternatingBatchSampler(10, labelled=torch.tensor([2, 5, 7]), batch_size=2, seed=0)
        >>> len(s), [sorted(set(b) & {2, 5, 7}) == sorted(b) for b in s]
        (6, [True, False, True, False, True, False])
        >>> first = list(s); s.set_epoch(0, start_batch=3); list(s) == first[3:]
        True
    """

    def __init__(self, size: int, *, labelled: Tensor, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.rank, self.world_size = _check_rank(rank, world_size)
        labelled = torch.as_tensor(labelled, dtype=torch.long).reshape(-1).unique()
        if labelled.numel() and not (int(labelled.min()) >= 0 and int(labelled.max()) < size):
            raise ValueError(f"labelled indices must lie in [0, {size}) (got {int(labelled.min())}..{int(labelled.max())})")
        is_labelled = torch.zeros(size, dtype=torch.bool)
        is_labelled[labelled] = True
        global_batch = batch_size * world_size
        for name, count in (("labelled", labelled.numel()), ("unlabelled", size - labelled.numel())):
            if count < global_batch:
                raise ValueError(
                    f"{count} {name} samples cannot fill one batch of {global_batch}; lower the batch size or "
                    "change the labelled fraction"
                )
        self.labelled, self.unlabelled = labelled, (~is_labelled).nonzero().squeeze(1)
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, *, start_batch: int = 0) -> None:
        """Select the epoch's order and skip its first ``start_batch`` batches."""
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def batches_per_epoch(self) -> int:
        """Global batches in one epoch: one labelled per unlabelled batch."""
        return 2 * (self.unlabelled.numel() // (self.batch_size * self.world_size))

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        generator = _epoch_generator(self.seed, self.epoch)
        global_batch = self.batch_size * self.world_size
        pairs = self.batches_per_epoch // 2
        unlabelled = self.unlabelled[torch.randperm(self.unlabelled.numel(), generator=generator)]
        per_pass = self.labelled.numel() // global_batch
        passes = -(-pairs // per_pass)
        labelled = torch.cat([
            self.labelled[torch.randperm(self.labelled.numel(), generator=generator)][: per_pass * global_batch]
            for _ in range(passes)
        ])
        order = torch.stack([labelled[: pairs * global_batch].view(pairs, global_batch),
                             unlabelled[: pairs * global_batch].view(pairs, global_batch)], dim=1)
        yield from _rank_slices(order.view(2 * pairs, global_batch), start_batch=self.start_batch, rank=self.rank,
                                batch_size=self.batch_size)
