"""``none`` and ``crop-flip``: the built-in batch-wise augmentations (the full recipes arrive later).

``crop-flip`` is a random resized crop back to the input size plus a horizontal flip, drawn per
sample on the CPU and applied on the images' device in one ``grid_sample`` (no host-device sync;
see :mod:`contrastkit.augmentations.batched`).

Example:
    >>> import torch
    >>> aug = CropFlip(scale=(0.5, 1.0))
    >>> aug(torch.rand(4, 3, 16, 16)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from contrastkit.augmentations.batched import apply_crop_flip, draw_crop_flip, to_device
from contrastkit.errors import InvalidParameter

__all__ = ["CropFlip", "NoAugmentation"]


class NoAugmentation(nn.Module):
    """The identity: views see the images as the dataset gives them.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 2, 2)
        >>> NoAugmentation()(x) is x
        True
    """

    def __init__(self) -> None:  # explicit: the recipe table takes no parameters
        super().__init__()

    def forward(self, images: Tensor) -> Tensor:
        return images


def check_crop_flip(
    scale: Sequence[float], ratio: Sequence[float], flip_p: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Validate a random resized crop's ``scale`` and ``ratio`` ranges and a flip probability.

    Returns ``(scale, ratio)`` as float pairs; errors name ``scale``, ``ratio`` or ``flip_p``.

    Example:
        >>> check_crop_flip([0.5, 1], [0.75, 1.25], 0.5)
        ((0.5, 1.0), (0.75, 1.25))
        >>> check_crop_flip([0, 1], [1, 1], 0.5)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: scale: must be [min, max] with 0 < min <= max <= 1 (got [0, 1])
    """
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise InvalidParameter("scale", "must be [min, max] with 0 < min <= max <= 1", list(scale))
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        raise InvalidParameter("ratio", "must be [min, max] with 0 < min <= max", list(ratio))
    if not 0 <= flip_p <= 1:
        raise InvalidParameter("flip_p", "must be a probability in [0, 1]", flip_p)
    return (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1]))


class CropFlip(nn.Module):
    """Random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``) and horizontal flip.

    Example:
        >>> CropFlip().scale
        (0.2, 1.0)
    """

    def __init__(
        self,
        *,
        scale: tuple[float, float] = (0.2, 1.0),
        ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        flip_p: float = 0.5,
    ) -> None:
        super().__init__()
        self.scale, self.ratio = check_crop_flip(scale, ratio, flip_p)
        self.flip_p = float(flip_p)

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``, fresh random parameters per sample (drawn on the CPU, one copy)."""
        batch, _, height, width = images.shape
        params = draw_crop_flip(batch, height, width, scale=self.scale, ratio=self.ratio, flip_p=self.flip_p)
        return apply_crop_flip(images, to_device(params, images.device), (height, width))
