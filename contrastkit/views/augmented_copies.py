"""``augmented-copies``: SimCLR's views — M independently augmented copies of the same image.

Every view has the image's channels, so one encoder can be shared by all views
(``[encoder] shared = true``). Each view calls the augmentation with its own index, so with
``[[augment]]`` every copy may follow its own recipe; with one ``[augment]`` table each copy still
draws its own random parameters.

Example:
    >>> import torch
    >>> maker = AugmentedCopies(num_views=3, channels=3)
    >>> views = maker({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x + view)
    >>> maker.view_channels, [round(float(v.mean() - views[0].mean()), 4) for v in views]
    ((3, 3, 3), [0.0, 1.0, 2.0])
"""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch

__all__ = ["AugmentedCopies"]


class AugmentedCopies(nn.Module):
    """``num_views`` augmented copies of ``batch["image"]`` (SimCLR uses two).

    ``channels`` declares the image's channel count (3 for RGB) so encoders are built to match
    before any data is seen; a batch with another count is a one-line :class:`ShapeError`.

    Example:
        >>> AugmentedCopies().view_channels
        (3, 3)
    """

    def __init__(self, *, num_views: int = 2, channels: int = 3) -> None:
        super().__init__()
        if num_views < 2:
            raise InvalidParameter("num_views", "must be >= 2 (a contrastive pair needs two views)", num_views)
        if channels < 1:
            raise InvalidParameter("channels", "must be >= 1", channels)
        self.num_views = num_views
        self.channels = channels

    @property
    def view_channels(self) -> tuple[int, ...]:
        """``(channels,) * num_views``."""
        return (self.channels,) * self.num_views

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``[B, C, H, W]`` -> ``num_views`` tensors ``[B, C, H, W]``, each augmented on its own."""
        image = batch["image"]
        if image.ndim != 4 or image.shape[1] != self.channels:
            raise ShapeError(
                f"views.augmented-copies: expected images [B, {self.channels}, H, W], got {tuple(image.shape)}; "
                f"set views.channels = {image.shape[1] if image.ndim == 4 else '?'}"
            )
        return [augment(image, view) for view in range(self.num_views)]
