"""Per-sample augmentation in DataLoader workers: a dataset wrapper that adds each view's augmented copy.

``WorkerAugmentedDataset(dataset, augmentations, seed=...)[i]`` is ``dataset[i]`` plus
``"image_views"``: uint8 ``[V, C, H, W]``, view ``v`` being ``augmentations[v].augment_sample(image,
seed=s)`` (or the unchanged image where ``augmentations[v]`` is ``None``, a view augmented on the
device). ``s`` depends only on ``(seed, epoch, index, view)`` — never on the worker or on how many
samples it has served — so any number of workers, any fetch order and a resumed run all give the
same copies, bit for bit.

Call :meth:`WorkerAugmentedDataset.set_epoch` before iterating each epoch. The epoch lives in shared
memory, so persistent workers see the new value too (it must be set before ``iter(loader)``, which
starts prefetching).

Example:
    >>> from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
    >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
    >>> data = WorkerAugmentedDataset(ColorfulMovingDigits(split="train", size=4, image_size=16),
    ...                               [AlbumentationsAugmentation(recipe="simclr"), None], seed=0)
    >>> item = data[2]
    >>> item["image_views"].shape, item["image_views"].dtype, int(item["index"])
    (torch.Size([2, 3, 16, 16]), torch.uint8, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.optional_hooks import EpochDataset, SampleAugmentation

__all__ = ["SampleAugmentation", "WorkerAugmentedDataset", "sample_seed"]


def sample_seed(seed: int, *, epoch: int, index: int, view: int) -> int:
    """The seed of one augmented copy: a hash of ``(seed, epoch, index, view)`` (a 64-bit int).

    Example:
        >>> sample_seed(0, epoch=1, index=5, view=0) == sample_seed(0, epoch=1, index=5, view=0)
        True
        >>> sample_seed(0, epoch=1, index=5, view=0) == sample_seed(0, epoch=1, index=5, view=1)
        False
    """
    # SeedSequence mixes its entropy words well, so nearby tuples give unrelated seeds.
    words = [seed % 2**64, epoch, index, view]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0])


def _as_uint8(image: Tensor) -> Tensor:
    if image.dtype == torch.uint8:
        return image
    if not image.is_floating_point():
        raise ShapeError(f"data: image must be uint8 or float in [0, 1] to augment in workers, got {image.dtype}")
    return image.mul(255).round_().clamp_(0, 255).to(torch.uint8)


class WorkerAugmentedDataset:
    """Wraps a dataset: each item gets ``"image_views"`` uint8 ``[V, C, H, W]`` (see the module docstring).

    Other keys (``image``, ``index``, labels) are passed through unchanged. Every view must come
    out at the same size (give all worker augmentations the same ``size``, or none).

    Example:
        >>> import torch
        >>> class Tiny:
        ...     label_keys = ()
        ...     def __len__(self): return 3
        ...     def __getitem__(self, i): return {"image": torch.full((1, 4, 4), i / 4), "index": torch.tensor(i)}
        >>> data = WorkerAugmentedDataset(Tiny(), [None, None], seed=0)
        >>> data[1]["image_views"][:, 0, 0, 0].tolist()
        [64, 64]
    """

    def __init__(self, dataset: Any, augmentations: Sequence[SampleAugmentation | None], *, seed: int) -> None:
        augmentations = tuple(augmentations)
        if not augmentations:
            raise InvalidParameter(
                "augmentations", "needs one entry per view (None for a view augmented on the device)", []
            )
        for v, aug in enumerate(augmentations):
            if aug is not None and not isinstance(aug, SampleAugmentation):
                raise InvalidParameter("augmentations", f"view {v}'s augmentation has no augment_sample method", aug)
        self.dataset = dataset
        self.augmentations = augmentations
        self.seed = int(seed)
        self.label_keys: tuple[str, ...] = tuple(getattr(dataset, "label_keys", ()))
        # Shared memory: DataLoader workers (persistent ones too) read the epoch the main process sets.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch whose augmentations items get.

        Example:
            >>> data = WorkerAugmentedDataset([], [None], seed=0)
            >>> data.set_epoch(3); data.epoch
            3
        """
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (``>= 0``) whose augmentations the following items get.

        Example:
            >>> data = WorkerAugmentedDataset([], [None], seed=0)
            >>> data.set_epoch(-1)
            Traceback (most recent call last):
            ...
            contrastkit.errors.InvalidParameter: epoch: must be >= 0 (got -1)
        """
        if epoch < 0:
            raise InvalidParameter("epoch", "must be >= 0", epoch)
        self._epoch.fill_(epoch)
        if isinstance(self.dataset, EpochDataset):  # e.g. pairs redrawn per epoch
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        image = _as_uint8(item["image"])
        if image.ndim != 3:
            raise ShapeError(f"data: item {index}'s image must be [C, H, W], got {tuple(image.shape)}")
        pixels = image.permute(1, 2, 0).contiguous().numpy()  # [H, W, C], as albumentations wants
        epoch = self.epoch
        views: list[Tensor] = []
        for v, aug in enumerate(self.augmentations):
            if aug is None:
                views.append(image)
                continue
            out = aug.augment_sample(pixels, seed=sample_seed(self.seed, epoch=epoch, index=int(index), view=v))
            views.append(torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1))
        shapes = {tuple(t.shape) for t in views}
        if len(shapes) > 1:
            raise ShapeError(
                f"augment: views of item {index} came out with different shapes {sorted(shapes)}; give every "
                "worker augmentation the same size (an unaugmented view keeps the dataset's size)"
            )
        item["image_views"] = torch.stack(views).contiguous()
        return item
