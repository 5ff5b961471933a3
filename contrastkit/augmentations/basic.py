"""``none`` and ``crop-flip``: the built-in batch-wise augmentations (the full recipes arrive later).

``crop-flip`` is a random resized crop back to the input size plus a horizontal flip, drawn per
sample by Kornia on the images' device.

Example:
    >>> import torch
    >>> aug = CropFlip(scale=(0.5, 1.0))
    >>> aug(torch.rand(4, 3, 16, 16)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

import kornia.augmentation as K
from torch import Tensor, nn

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
        if not 0 < scale[0] <= scale[1] <= 1:
            raise InvalidParameter("scale", "must satisfy 0 < min <= max <= 1", list(scale))
        if not 0 < ratio[0] <= ratio[1]:
            raise InvalidParameter("ratio", "must satisfy 0 < min <= max", list(ratio))
        if not 0 <= flip_p <= 1:
            raise InvalidParameter("flip_p", "must be in [0, 1]", flip_p)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.flip = K.RandomHorizontalFlip(p=flip_p)
        self._crops: dict[tuple[int, int], nn.Module] = {}

    def _crop(self, size: tuple[int, int]) -> nn.Module:
        # Kornia's crop needs its output size up front; build one per input size on first use.
        if size not in self._crops:
            self._crops[size] = K.RandomResizedCrop(size=size, scale=self.scale, ratio=self.ratio)
        return self._crops[size]

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``, fresh random parameters per sample."""
        return self.flip(self._crop((images.shape[-2], images.shape[-1]))(images))
