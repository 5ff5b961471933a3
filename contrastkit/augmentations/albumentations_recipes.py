"""``albumentations``: the ``simclr`` / ``infomin`` recipes per sample on the CPU, inside DataLoader workers.

The same steps, parameters and channel rule as :mod:`~contrastkit.augmentations.simclr` and
:mod:`~contrastkit.augmentations.infomin`, run with albumentations 2 on one uint8 ``[H, W, C]``
image at a time, so the augmentation overlaps with training instead of running on the device.
``recipe = "none"`` only resizes to ``size`` (when given).

It is not called on the device: the trainer wraps the dataset in
:class:`~contrastkit.training.worker_augmentation.WorkerAugmentedDataset`, which calls
:meth:`AlbumentationsAugmentation.augment_sample` with a seed derived from (run seed, epoch,
index, view), so a resumed run repeats the same augmentations bit for bit.
``runs_in_workers = True`` tells the pipeline so.

Channels: with ``C > 3`` the first 3 channels are the image and the rest travel as an
albumentations ``mask`` (bilinear resampling, grey fill), so crop, flip and RandAugment's
rotate / shear / translate move them while colour and intensity ops leave them alone. With 1 or 2
channels, jitter, grayscale and RandAugment's ``color`` op are skipped.

Example:
    >>> import numpy as np
    >>> aug = AlbumentationsAugmentation(recipe="infomin", size=16)
    >>> image = np.random.default_rng(0).integers(0, 256, (24, 24, 4), dtype=np.uint8)
    >>> out = aug.augment_sample(image, seed=7)
    >>> out.shape, out.dtype, bool((out == aug.augment_sample(image, seed=7)).all())
    ((16, 16, 4), dtype('uint8'), True)
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from torch import Tensor

from contrastkit.augmentations.channel_rule import has_rgb
from contrastkit.augmentations.recipe_parameters import HUE, RecipeParameters, blur_kernel_size
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError

if TYPE_CHECKING:
    import albumentations as A

__all__ = ["AlbumentationsAugmentation", "Recipe"]

Recipe = Literal["simclr", "infomin", "none"]
_RECIPES = ("simclr", "infomin", "none")
_DEFAULT_CROP_SCALE = {"simclr": (0.08, 1.0), "infomin": (0.2, 1.0)}


class AlbumentationsAugmentation(RecipeParameters):
    """A recipe run per sample in DataLoader workers; ``augment_sample`` is deterministic given ``seed``.

    ``crop_scale`` defaults to the recipe's (SimCLR 0.08-1, InfoMin 0.2-1); the ``randaugment_*``
    parameters are used by ``infomin`` only.

    Example:
        >>> import numpy as np
        >>> aug = AlbumentationsAugmentation(recipe="simclr", strength=0.5)
        >>> aug.runs_in_workers, aug.crop_scale
        (True, (0.08, 1.0))
        >>> aug.augment_sample(np.zeros((8, 8, 1), np.uint8), seed=0).shape
        (8, 8, 1)
    """

    runs_in_workers: ClassVar[bool] = True

    def __init__(
        self,
        *,
        recipe: Recipe = "simclr",
        strength: float = 1.0,
        crop_scale: tuple[float, float] | None = None,
        crop_ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        randaugment_ops: int = 2,
        randaugment_magnitude: float = 10.0,
        randaugment_p: float = 0.5,
        size: int | None = None,
    ) -> None:
        if recipe not in _RECIPES:
            raise InvalidParameter("recipe", "must be one of " + ", ".join(repr(r) for r in _RECIPES), recipe)
        like = "infomin" if recipe == "infomin" else "simclr"  # "none" takes SimCLR's hue bound and crop scale
        scale = _DEFAULT_CROP_SCALE[like] if crop_scale is None else crop_scale
        super().__init__(hue=HUE[like], strength=strength, crop_scale=scale, crop_ratio=crop_ratio, flip_p=flip_p,
                         jitter_p=jitter_p, grayscale_p=grayscale_p, blur_p=blur_p, blur_sigma=blur_sigma,
                         randaugment_ops=randaugment_ops, randaugment_magnitude=randaugment_magnitude,
                         randaugment_p=randaugment_p, size=size)
        self.recipe = recipe
        # One pipeline per (has RGB, output size), built on first use (albumentations imports lazily:
        # it is only needed where samples are augmented).
        self._pipelines: dict[tuple[bool, int, int], A.Compose] = {}

    def _pipeline(self, rgb: bool, height: int, width: int) -> A.Compose:
        key = (rgb, height, width)
        if key not in self._pipelines:
            self._pipelines[key] = self._build(rgb, height, width)
        return self._pipelines[key]

    def _build(self, rgb: bool, height: int, width: int) -> A.Compose:
        import cv2

        # Imported through the helper, which turns off albumentations' online version check first.
        from contrastkit.augmentations.rand_augment_albumentations import A, rand_augment

        steps: list[Any] = []
        if self.recipe == "none":
            if self.size is not None:
                steps.append(A.Resize(height, width, interpolation=cv2.INTER_LINEAR))
        else:
            steps += [
                A.RandomResizedCrop(size=(height, width), scale=self.crop_scale, ratio=self.crop_ratio, p=1.0),
                A.HorizontalFlip(p=self.flip_p),
            ]
            if rgb and self.strength > 0 and self.jitter_p > 0:
                b, c, s, h = self.jitter_strengths
                steps.append(A.ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=self.jitter_p))
            grayscale = [A.ToGray(num_output_channels=3, p=self.grayscale_p)] if rgb and self.grayscale_p > 0 else []
            k = blur_kernel_size(height, width)
            blur_op = A.GaussianBlur(blur_limit=(k, k), sigma_limit=self.blur_sigma, p=self.blur_p)
            blur = [blur_op] if self.blur_p > 0 else []
            if self.recipe == "simclr":
                steps += grayscale + blur
            else:
                steps += blur
                if self.randaugment_ops > 0:
                    magnitude, p = self.randaugment_magnitude, self.randaugment_p
                    steps.append(rand_augment(num_ops=self.randaugment_ops, magnitude=magnitude, p=p, rgb=rgb))
                steps += grayscale
        # Extra channels ride along as a mask: resampled bilinearly like the image, not nearest.
        return A.Compose(steps, mask_interpolation=cv2.INTER_LINEAR, strict=True)

    def augment_sample(self, image: np.ndarray, *, seed: int) -> np.ndarray:
        """uint8 ``[H, W, C] -> [size, size, C]`` (or ``[H, W, C]``); the same ``seed`` gives the same output.

        Example:
            >>> import numpy as np
            >>> image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            >>> aug = AlbumentationsAugmentation(recipe="simclr")
            >>> bool((aug.augment_sample(image, seed=1) == aug.augment_sample(image, seed=2)).all())
            False
        """
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
            got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {tuple(getattr(image, 'shape', ()))}"
            raise ShapeError(f"albumentations: augment_sample takes a uint8 [H, W, C] numpy array, got {got}")
        if seed < 0:
            raise ValueError(f"albumentations: seed must be >= 0 (got {seed})")
        height, width, channels = image.shape
        out_h, out_w = self.output_size(height, width)
        pipeline = self._pipeline(has_rgb(channels), out_h, out_w)
        # Fresh generators shared by every transform: draws continue from one stream, so the
        # transforms' random choices are not correlated the way equal per-transform seeds would be.
        pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
        if channels > 3:
            result = pipeline(image=np.ascontiguousarray(image[..., :3]), mask=np.ascontiguousarray(image[..., 3:]))
            out = np.concatenate([result["image"], result["mask"].reshape(out_h, out_w, channels - 3)], axis=2)
        else:
            out = pipeline(image=image)["image"].reshape(out_h, out_w, channels)
        return np.ascontiguousarray(out, dtype=np.uint8)

    def forward(self, images: Tensor) -> Tensor:
        """Not a device augmentation: raises :class:`~contrastkit.errors.ConfigError`.

        Example:
            >>> import torch
            >>> AlbumentationsAugmentation()(torch.rand(1, 3, 4, 4))
            Traceback (most recent call last):
            ...
            contrastkit.errors.ConfigError: augment: 'albumentations' runs per sample in DataLoader workers (WorkerAugmentedDataset), not batch-wise on the device; use 'simclr' or 'infomin' for device augmentation
        """
        raise ConfigError(
            "augment: 'albumentations' runs per sample in DataLoader workers (WorkerAugmentedDataset), not "
            "batch-wise on the device; use 'simclr' or 'infomin' for device augmentation"
        )
