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

from torch import Tensor

from contrastkit.augmentations.channel_rule import on_photometric_channels
from contrastkit.augmentations.device_recipe import DeviceRecipe
from contrastkit.augmentations.recipe_parameters import HUE

__all__ = ["SimCLRAugmentation"]


class SimCLRAugmentation(DeviceRecipe):
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
        super().__init__(hue=HUE["simclr"], strength=strength, crop_scale=crop_scale, crop_ratio=crop_ratio, flip_p=flip_p,
                         jitter_p=jitter_p, grayscale_p=grayscale_p, blur_p=blur_p, blur_sigma=blur_sigma, size=size)

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, size, size]`` (or ``[B, C, H, W]`` without ``size``), values in [0, 1]."""
        x, draws = self.draw_and_crop(images)
        x = on_photometric_channels(x, lambda head: self._blur(self._grayscale(self._jitter(head, draws), draws), draws))
        return x.clamp(0.0, 1.0)
