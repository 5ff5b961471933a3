"""The channel rule of the augmentations: which channels an op moves, and which it recolours.

The same on the device and in DataLoader workers: crop, flip and RandAugment's rotate / shear /
translate move every channel together; every other op (colour jitter, grayscale, blur, RandAugment's
intensity ops) touches the first 3 channels only, so extra channels stacked after RGB (depth,
normals, ...) are moved but never recoloured. Images with 1 or 2 channels have no RGB to recolour:
colour jitter, grayscale and RandAugment's ``color`` (saturation) are skipped, and blur and the other
intensity ops act on all channels.

Example:
    >>> photometric_channels(4), photometric_channels(2), has_rgb(1)
    (3, 2, False)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["has_rgb", "on_photometric_channels", "photometric_channels"]


def photometric_channels(channels: int) -> int:
    """How many leading channels the intensity ops touch: RGB when present, else all.

    Example:
        >>> photometric_channels(3)
        3
    """
    return min(channels, 3)


def has_rgb(channels: int) -> bool:
    """Whether colour ops (jitter, grayscale, saturation) apply: they need 3 channels.

    Example:
        >>> has_rgb(3), has_rgb(2)
        (True, False)
    """
    return channels >= 3


def on_photometric_channels(images: Tensor, op: Callable[[Tensor], Tensor]) -> Tensor:
    """``op`` applied to the leading (RGB) channels of ``images`` ``[B, C, H, W]``; the others are kept.

    Example:
        >>> import torch
        >>> out = on_photometric_channels(torch.zeros(1, 4, 2, 2), lambda rgb: rgb + 1)
        >>> out[0, :, 0, 0].tolist()
        [1.0, 1.0, 1.0, 0.0]
    """
    head = photometric_channels(images.shape[1])
    return torch.cat([op(images[:, :head]), images[:, head:]], dim=1)
