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
:mod:`contrastkit.augmentations.rand_augment`; each of the ``randaugment_ops`` ops is drawn per
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

from torch import Tensor

from contrastkit.augmentations.channel_rule import on_photometric_channels
from contrastkit.augmentations.device_recipe import DeviceRecipe
from contrastkit.augmentations.rand_augment import RandAugment
from contrastkit.augmentations.recipe_parameters import HUE

__all__ = ["InfoMinAugmentation"]


class InfoMinAugmentation(DeviceRecipe):
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
        super().__init__(hue=HUE["infomin"], strength=strength, crop_scale=crop_scale, crop_ratio=crop_ratio, flip_p=flip_p,
                         jitter_p=jitter_p, grayscale_p=grayscale_p, blur_p=blur_p, blur_sigma=blur_sigma,
                         randaugment_ops=randaugment_ops, randaugment_magnitude=randaugment_magnitude,
                         randaugment_p=randaugment_p, size=size)
        self.rand_augment = RandAugment(
            num_ops=self.randaugment_ops, magnitude=self.randaugment_magnitude, p=self.randaugment_p
        )

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, size, size]`` (or ``[B, C, H, W]`` without ``size``), values in [0, 1]."""
        # Crop to grayscale (not RandAugment): parameters drawn on the CPU, one copy to the device.
        x, draws = self.draw_and_crop(images)
        x = on_photometric_channels(x, lambda head: self._blur(self._jitter(head, draws), draws))
        x = self.rand_augment(x)  # splits geometric / intensity ops by channel itself
        x = on_photometric_channels(x, lambda head: self._grayscale(head, draws))
        return x.clamp(0.0, 1.0)
