"""``simclr``: SimCLR's augmentation, batch-wise on the device (Kornia's kernels, no host-device sync).

In order, each with fresh parameters per sample (drawn from the global torch RNG, so a resumed
run that restores it repeats them):

1. random resized crop, area fraction in ``crop_scale`` (0.08-1), aspect ratio in ``crop_ratio``,
   resized to ``size`` (or back to the input size);
2. horizontal flip with probability ``flip_p``;
3. colour jitter ``(brightness, contrast, saturation, hue) = (0.8, 0.8, 0.8, 0.2) * strength``, applied
   with probability ``jitter_p`` (0.8); factors are drawn per sample, the order of the four
   adjustments once per batch (torchvision's formulas, Kornia's kernels);
4. grayscale with probability ``grayscale_p`` (0.2);
5. Gaussian blur, kernel about 10% of the output side (odd), sigma in ``blur_sigma`` (0.1-2), with
   probability ``blur_p``: SimCLR used 0.5 on ImageNet and no blur on CIFAR-10 (``blur_p = 0``).

Channels: crop and flip move all channels together; jitter, grayscale and blur touch the first 3
channels only (extra channels such as a stacked depth map keep their values). With 1 or 2 channels
there is no RGB: jitter and grayscale are skipped and blur acts on all channels. Output values stay
in [0, 1]. Parameters are drawn on the CPU and reach the device in one copy, and random steps run on
the whole batch with ``torch.where``: nothing waits for the GPU (see
:mod:`contrastkit.augmentations.batched`).

Example:
    >>> import torch
    >>> aug = SimCLRAugmentation(strength=0.5, blur_p=0.0, size=16)
    >>> aug(torch.rand(4, 3, 32, 32)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

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
from contrastkit.augmentations.batched import apply_blur, apply_crop_flip, apply_jitter, draw_recipe, grayscale, keep

__all__ = ["SimCLRAugmentation"]

_HUE = 0.2  # SimCLR's hue jitter at strength 1


class SimCLRAugmentation(nn.Module):
    """Crop, flip, colour jitter, grayscale and blur (see the module docstring for the details).

    Example:
        >>> import torch
        >>> aug = SimCLRAugmentation(strength=1.0, crop_scale=(0.08, 1.0), blur_p=0.5)
        >>> out = aug(torch.rand(2, 4, 24, 24))  # RGB + depth: depth is cropped, never recoloured
        >>> out.shape, bool(((out >= 0) & (out <= 1)).all())
        (torch.Size([2, 4, 24, 24]), True)
    """

    def __init__(
        self,
        *,
        strength: float = 1.0,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        size: int | None = None,
    ) -> None:
        super().__init__()
        self.strength = check_strength(strength, _HUE)
        self.crop_scale = check_interval("crop_scale", crop_scale, low=0, high=1)
        self.crop_ratio = check_interval("crop_ratio", crop_ratio, low=0)
        self.blur_sigma = check_interval("blur_sigma", blur_sigma, low=0)
        self.flip_p = check_probability("flip_p", flip_p)
        self.jitter_p = check_probability("jitter_p", jitter_p)
        self.grayscale_p = check_probability("grayscale_p", grayscale_p)
        self.blur_p = check_probability("blur_p", blur_p)
        self.size = check_size(size)
        self.jitter_strengths = jitter_strengths(self.strength, _HUE)

    def _out_size(self, images: Tensor) -> tuple[int, int]:
        return (self.size, self.size) if self.size is not None else (images.shape[-2], images.shape[-1])

    def _photometric(self, x: Tensor, params: dict[str, Tensor], order: Tensor | None) -> Tensor:
        """Jitter, grayscale, blur on the leading (RGB) channels ``x``."""
        if has_rgb(x.shape[1]):
            if order is not None:
                x = apply_jitter(x, params, order)
            if self.grayscale_p > 0:
                x = keep(params["grayscale"], grayscale(x), x)
        if self.blur_p > 0:
            x = apply_blur(x, params, blur_kernel_size(x.shape[-2], x.shape[-1]))
        return x

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, size, size]`` (or ``[B, C, H, W]`` without ``size``), values in [0, 1]."""
        # Every parameter drawn on the CPU first, then one copy to the device (see augmentations.batched).
        draws = draw_recipe(images, crop_scale=self.crop_scale, crop_ratio=self.crop_ratio, flip_p=self.flip_p,
                            jitter=self.jitter_strengths if self.strength > 0 else None, jitter_p=self.jitter_p,
                            grayscale_p=self.grayscale_p, blur_sigma=self.blur_sigma, blur_p=self.blur_p)
        params, order = draws.params, draws.order
        x = apply_crop_flip(images, params, self._out_size(images))
        head = photometric_channels(x.shape[1])
        x = torch.cat([self._photometric(x[:, :head], params, order), x[:, head:]], dim=1)
        return x.clamp(0.0, 1.0)
