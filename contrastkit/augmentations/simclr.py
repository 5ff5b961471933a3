"""``simclr``: SimCLR's augmentation, batch-wise on the device with Kornia.

In order, each with fresh parameters per sample (drawn from the global torch RNG, so a resumed
run that restores it repeats them):

1. random resized crop, area fraction in ``crop_scale`` (0.08-1), aspect ratio in ``crop_ratio``,
   resized to ``size`` (or back to the input size);
2. horizontal flip with probability ``flip_p``;
3. colour jitter ``(brightness, contrast, saturation, hue) = (0.8, 0.8, 0.8, 0.2) * strength``, applied
   with probability ``jitter_p`` (0.8); factors are drawn per sample, the order of the four
   adjustments once per batch (Kornia's ColorJitter);
4. grayscale with probability ``grayscale_p`` (0.2);
5. Gaussian blur, kernel about 10% of the output side (odd), sigma in ``blur_sigma`` (0.1-2), with
   probability ``blur_p``: SimCLR used 0.5 on ImageNet and no blur on CIFAR-10 (``blur_p = 0``).

Channels: crop and flip move all channels together; jitter, grayscale and blur touch the first 3
channels only (extra channels such as a stacked depth map keep their values). With 1 or 2 channels
there is no RGB: jitter and grayscale are skipped and blur acts on all channels. Output values stay
in [0, 1].

Example:
    >>> import torch
    >>> aug = SimCLRAugmentation(strength=0.5, blur_p=0.0, size=16)
    >>> aug(torch.rand(4, 3, 32, 32)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

import kornia.augmentation as K
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
        self.flip = K.RandomHorizontalFlip(p=self.flip_p)
        # Jitter at strength 0 is the identity: leave it out rather than draw unused parameters.
        self.jitter = (
            K.ColorJitter(*jitter_strengths(self.strength, _HUE), p=self.jitter_p)
            if self.strength > 0 and self.jitter_p > 0
            else None
        )
        self.grayscale = K.RandomGrayscale(p=self.grayscale_p) if self.grayscale_p > 0 else None
        # Kornia's crop and blur need the output size up front; one per output size, built on first use.
        self._crops: dict[tuple[int, int], nn.Module] = {}
        self._blurs: dict[tuple[int, int], nn.Module] = {}

    def _out_size(self, images: Tensor) -> tuple[int, int]:
        return (self.size, self.size) if self.size is not None else (images.shape[-2], images.shape[-1])

    def _crop(self, size: tuple[int, int]) -> nn.Module:
        if size not in self._crops:
            self._crops[size] = K.RandomResizedCrop(size=size, scale=self.crop_scale, ratio=self.crop_ratio)
        return self._crops[size]

    def _blur(self, size: tuple[int, int]) -> nn.Module:
        if size not in self._blurs:
            k = blur_kernel_size(*size)
            self._blurs[size] = K.RandomGaussianBlur((k, k), self.blur_sigma, p=self.blur_p)
        return self._blurs[size]

    def _photometric(self, x: Tensor) -> Tensor:
        """Jitter, grayscale, blur on the leading (RGB) channels ``x``."""
        if has_rgb(x.shape[1]):
            if self.jitter is not None:
                x = self.jitter(x)
            if self.grayscale is not None:
                x = self.grayscale(x)
        if self.blur_p > 0:
            x = self._blur((x.shape[-2], x.shape[-1]))(x)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, size, size]`` (or ``[B, C, H, W]`` without ``size``), values in [0, 1]."""
        x = self.flip(self._crop(self._out_size(images))(images))
        head = photometric_channels(x.shape[1])
        x = torch.cat([self._photometric(x[:, :head]), x[:, head:]], dim=1)
        return x.clamp(0.0, 1.0)
