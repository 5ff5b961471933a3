"""``infomin``: InfoMin's augmentation (seed 001, Figure 10b), batch-wise on the device (Kornia's kernels).

The listing, in order, each step with fresh parameters per sample from the global torch RNG::

    RandomResizedCrop(scale=(0.2, 1.0))
    RandomHorizontalFlip()
    RandomApply([ColorJitter([0.8, 0.8, 0.8, 0.4] * s)], p=0.8)
    RandomApply([Blur(sigma=(0.1, 2.0))], p=0.5)
    RandAugment()            # 2 ops, magnitude 10 (timm's rand-n2-m10, as InfoMin's code)
    RandomGrayscale(p=0.2)

``strength`` is ``s``; jitter factors are drawn per sample, the order of the four adjustments once
per batch (torchvision's formulas, Kornia's kernels). The blur kernel is about 10% of the output
side (odd). RandAugment's ops and magnitudes are listed in
:mod:`contrastkit.augmentations._rand_augment`; each of the ``randaugment_ops`` ops is drawn per
sample and applied with probability ``randaugment_p`` (0.5, as in timm); ``randaugment_ops = 0``
turns it off.

Channels: crop, flip and RandAugment's rotate / shear / translate move all channels together;
jitter, blur, RandAugment's intensity ops and grayscale touch the first 3 channels only (a stacked
depth map is moved, never recoloured). With 1 or 2 channels there is no RGB: jitter, grayscale and
RandAugment's ``color`` op are skipped; blur and the other intensity ops act on all channels.
Output values stay in [0, 1]. Crop, flip, jitter, blur and grayscale draw their parameters on the CPU
and reach the device in one copy, and run on the whole batch with ``torch.where`` (no host-device sync;
see :mod:`contrastkit.augmentations.batched`); RandAugment still groups samples by op.

Example:
    >>> import torch
    >>> aug = InfoMinAugmentation(strength=0.5)
    >>> aug(torch.rand(4, 3, 32, 32)).shape
    torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from contrastkit.augmentations._common import (
    blur_kernel_size,
    check_interval,
    check_probability,
    check_size,
    check_strength,
    has_rgb,
    jitter_strengths,
    photometric_channels,
)
from contrastkit.augmentations._rand_augment import RandAugment
from contrastkit.augmentations.batched import apply_blur, apply_crop_flip, apply_jitter, draw_recipe, grayscale, keep

__all__ = ["InfoMinAugmentation"]

_HUE = 0.4  # InfoMin's hue jitter at strength 1


class InfoMinAugmentation(nn.Module):
    """Crop, flip, jitter, blur, RandAugment, grayscale (see the module docstring for the details).

    Example:
        >>> import torch
        >>> aug = InfoMinAugmentation(randaugment_ops=2, randaugment_magnitude=10, size=16)
        >>> out = aug(torch.rand(2, 1, 24, 24))  # one channel: no colour ops
        >>> out.shape, bool(((out >= 0) & (out <= 1)).all())
        (torch.Size([2, 1, 16, 16]), True)
    """

    def __init__(
        self,
        *,
        strength: float = 1.0,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        randaugment_ops: int = 2,
        randaugment_magnitude: float = 10.0,
        randaugment_p: float = 0.5,
        grayscale_p: float = 0.2,
        size: int | None = None,
    ) -> None:
        super().__init__()
        self.strength = check_strength(strength, _HUE)
        self.crop_scale = check_interval("crop_scale", crop_scale, low=0, high=1)
        self.crop_ratio = check_interval("crop_ratio", crop_ratio, low=0)
        self.blur_sigma = check_interval("blur_sigma", blur_sigma, low=0)
        self.flip_p = check_probability("flip_p", flip_p)
        self.jitter_p = check_probability("jitter_p", jitter_p)
        self.blur_p = check_probability("blur_p", blur_p)
        self.grayscale_p = check_probability("grayscale_p", grayscale_p)
        self.size = check_size(size)
        self.jitter_strengths = jitter_strengths(self.strength, _HUE)
        self.rand_augment = RandAugment(num_ops=randaugment_ops, magnitude=randaugment_magnitude, p=randaugment_p)

    def _out_size(self, images: Tensor) -> tuple[int, int]:
        return (self.size, self.size) if self.size is not None else (images.shape[-2], images.shape[-1])

    def _on_head(self, x: Tensor, op: Callable[[Tensor], Tensor]) -> Tensor:
        """Apply an intensity op to the leading (RGB) channels only."""
        head = photometric_channels(x.shape[1])
        return torch.cat([op(x[:, :head]), x[:, head:]], dim=1)

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, size, size]`` (or ``[B, C, H, W]`` without ``size``), values in [0, 1]."""
        # Crop to grayscale (not RandAugment): parameters drawn on the CPU, one copy to the device.
        draws = draw_recipe(images, crop_scale=self.crop_scale, crop_ratio=self.crop_ratio, flip_p=self.flip_p,
                            jitter=self.jitter_strengths if self.strength > 0 else None, jitter_p=self.jitter_p,
                            grayscale_p=self.grayscale_p, blur_sigma=self.blur_sigma, blur_p=self.blur_p)
        params, order = draws.params, draws.order
        x = apply_crop_flip(images, params, self._out_size(images))
        rgb = has_rgb(x.shape[1])
        if rgb and order is not None:
            x = self._on_head(x, lambda head: apply_jitter(head, params, order))
        if self.blur_p > 0:
            kernel = blur_kernel_size(x.shape[-2], x.shape[-1])
            x = self._on_head(x, lambda head: apply_blur(head, params, kernel))
        x = self.rand_augment(x)  # splits geometric / intensity ops by channel itself
        if rgb and self.grayscale_p > 0:
            x = self._on_head(x, lambda head: keep(params["grayscale"], grayscale(head), head))
        return x.clamp(0.0, 1.0)
