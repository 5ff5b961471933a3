"""The steps the ``simclr`` and ``infomin`` recipes share on the device, batch-wise with no host-device sync.

:class:`DeviceRecipe` draws every random parameter of a batch on the CPU and copies them to the
device at once (:mod:`contrastkit.augmentations.batched`), crops and flips, and provides the colour
jitter, grayscale and blur steps on the leading (RGB) channels (the channel rule of
:mod:`contrastkit.augmentations.channel_rule`); each recipe puts them in its own order.

Example:
    >>> import torch
    >>> from contrastkit.augmentations.simclr import SimCLRAugmentation
    >>> cropped, draws = SimCLRAugmentation(size=8).draw_and_crop(torch.rand(2, 3, 16, 16))
    >>> cropped.shape, draws.order is not None
    (torch.Size([2, 3, 8, 8]), True)
"""

from __future__ import annotations

from torch import Tensor

from contrastkit.augmentations.batched import (
    RecipeDraws,
    apply_blur,
    apply_crop_flip,
    apply_jitter,
    draw_recipe,
    grayscale,
    keep,
)
from contrastkit.augmentations.channel_rule import has_rgb
from contrastkit.augmentations.recipe_parameters import RecipeParameters, blur_kernel_size

__all__ = ["DeviceRecipe"]


class DeviceRecipe(RecipeParameters):
    """Base class of the device recipes: the batch's draws, crop and flip, then jitter, grayscale, blur.

    The colour steps take the leading channels ``head`` (``[B, 3 or fewer, H, W]``) and skip what
    does not apply: jitter and grayscale need RGB, and a step with probability 0 was not drawn.

    Example:
        >>> import torch
        >>> from contrastkit.augmentations.infomin import InfoMinAugmentation
        >>> aug = InfoMinAugmentation(jitter_p=0.0, size=8)
        >>> isinstance(aug, DeviceRecipe), aug(torch.rand(2, 3, 16, 16)).shape
        (True, torch.Size([2, 3, 8, 8]))
    """

    def draw_and_crop(self, images: Tensor) -> tuple[Tensor, RecipeDraws]:
        """Draw every random parameter for ``images`` (one copy to the device), then crop, flip and resize.

        Returns the cropped images and the draws, whose jitter, grayscale and blur parameters the
        recipe's colour steps apply next.

        Example:
            >>> import torch
            >>> from contrastkit.augmentations.simclr import SimCLRAugmentation
            >>> cropped, draws = SimCLRAugmentation(blur_p=0.0).draw_and_crop(torch.rand(2, 4, 16, 12))
            >>> cropped.shape, "sigma" in draws.params
            (torch.Size([2, 4, 16, 12]), False)
        """
        draws = draw_recipe(images, crop_scale=self.crop_scale, crop_ratio=self.crop_ratio, flip_p=self.flip_p,
                            jitter=self.jitter_strengths if self.strength > 0 else None, jitter_p=self.jitter_p,
                            grayscale_p=self.grayscale_p, blur_sigma=self.blur_sigma, blur_p=self.blur_p)
        cropped = apply_crop_flip(images, draws.params, self.output_size(images.shape[-2], images.shape[-1]))
        return cropped, draws

    def _jitter(self, head: Tensor, draws: RecipeDraws) -> Tensor:
        """Colour jitter where drawn (RGB only; nothing was drawn at strength 0 or ``jitter_p = 0``)."""
        if not has_rgb(head.shape[1]) or draws.order is None:
            return head
        return apply_jitter(head, draws.params, draws.order)

    def _grayscale(self, head: Tensor, draws: RecipeDraws) -> Tensor:
        """Grayscale where drawn (RGB only)."""
        if not has_rgb(head.shape[1]) or self.grayscale_p <= 0:
            return head
        return keep(draws.params["grayscale"], grayscale(head), head)

    def _blur(self, head: Tensor, draws: RecipeDraws) -> Tensor:
        """Gaussian blur where drawn, kernel about 10% of the side (every channel when there is no RGB)."""
        if self.blur_p <= 0:
            return head
        return apply_blur(head, draws.params, blur_kernel_size(head.shape[-2], head.shape[-1]))
