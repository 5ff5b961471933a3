"""``image-pair``: two views from two images of the batch — ``image`` and ``image_pair``.

For datasets that construct the positive pair themselves, so the recipe chooses what the views
share: ``colorful-moving-digits`` with ``pair = ["digit"]`` gives seed 000's Table 1 experiment
(views that share only the digit), and any dataset that puts a second image under ``image_pair``
works the same way. View 1 is ``image``, view 2 is ``image_pair``; each goes through its view's
augmentation.

In ``eval()`` mode (linear probe, kNN, feature export) a sample is one image: both views are
``image``, so each view's encoder describes the image the labels belong to.

Example:
    >>> import torch
    >>> maker = ImagePairViews()
    >>> batch = {"image": torch.zeros(2, 3, 8, 8), "image_pair": torch.ones(2, 3, 8, 8)}
    >>> [float(v.mean()) for v in maker(batch, lambda x, view: x)]
    [0.0, 1.0]
    >>> [float(v.mean()) for v in maker.eval()(batch, lambda x, view: x)]
    [0.0, 0.0]
"""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch

__all__ = ["ImagePairViews", "pair_views"]


class ImagePairViews(nn.Module):
    """Views ``(image, image_pair)`` of ``channels`` channels each (``(image, image)`` in eval mode).

    Example:
        >>> ImagePairViews(channels=1).view_channels, ImagePairViews.required_keys
        ((1, 1), ('image_pair',))
    """

    #: Batch entries this view maker reads besides ``image`` (checked against the dataset before training).
    required_keys = ("image_pair",)

    def __init__(self, *, channels: int = 3) -> None:
        super().__init__()
        if channels < 1:
            raise InvalidParameter("channels", "must be >= 1", channels)
        self.channels = channels

    @property
    def view_channels(self) -> tuple[int, int]:
        """``(channels, channels)``."""
        return (self.channels, self.channels)

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``image`` and ``image_pair`` ``[B, C, H, W]`` -> two views ``[B, C, H', W']``."""
        return pair_views(batch, augment, channels=self.channels, training=self.training, name="image-pair")


def pair_views(batch: Batch, augment: AugmentFn, *, channels: int, training: bool, name: str) -> list[Tensor]:
    """``[augment(image, 0), augment(image_pair, 1)]``, shapes checked; ``image`` twice when not ``training``.

    Errors name the view maker ``name``.

    Example:
        >>> import torch
        >>> batch = {"image": torch.zeros(1, 3, 4, 4), "image_pair": torch.ones(1, 3, 4, 4)}
        >>> [float(v.mean()) for v in pair_views(batch, lambda x, view: x, channels=3, training=False, name="x")]
        [0.0, 0.0]
    """
    image = batch["image"]
    second = batch.get("image_pair") if training else image
    if second is None:
        raise ShapeError(
            f"views.{name}: the batch has no 'image_pair'; use a dataset that builds pairs "
            "(colorful-moving-digits with data.pair = [\"digit\"], say)"
        )
    for key, images in (("image", image), ("image_pair", second)):
        if images.ndim != 4 or images.shape[1] != channels:
            raise ShapeError(
                f"views.{name}: expected {key} [B, {channels}, H, W], got {tuple(images.shape)}; "
                f"set views.channels = {images.shape[1] if images.ndim == 4 else '?'}"
            )
    if second.shape[0] != image.shape[0]:
        raise ShapeError(f"views.{name}: image_pair has {second.shape[0]} samples, image {image.shape[0]}")
    return [augment(image, 0), augment(second, 1)]
