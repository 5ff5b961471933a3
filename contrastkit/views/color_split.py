"""``color-split``: CMC's colour-space views — convert RGB to a colour space, split its channels.

Lab gives CMC's L | ab views; YDbDr gives Y | DbDr (CMC's best pair on ImageNet); ``ycbcr``,
``yiq``, ``hsv``, ``xyz``, ``luv`` and ``rgb`` (R | GB) complete the spaces CMC compares. The
conversions (:mod:`contrastkit.views.color_spaces`) run batch-wise on the images' device and are
differentiable, so a learned view generator may sit in front.

``groups`` lists the channels (0, 1, 2 of the space) of each of the ``M >= 2`` views:
``[[0], [1, 2]]`` (default) is L | ab, ``[[0], [1], [2]]`` is L | a | b. A channel may appear in
several groups (``[[0, 1, 2], [0]]``: the whole image against its luminance) but only once per
group; CMC's splits never overlap, and overlapping views share information by construction.

Normalisation (``normalize = true``) maps each channel to roughly [-1, 1] with per-space constants
(:data:`contrastkit.views.color_spaces.NORMALIZATION`; Lab uses CMC's statistics).

Example:
    >>> import torch
    >>> maker = ColorSplitViews(space="ydbdr", groups=[[0], [1, 2]])
    >>> l, ab = maker({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    >>> l.shape, ab.shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]))
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch
from contrastkit.views.color_spaces import (
    CHANNEL_NAMES,
    ColorSpace,
    check_channel_groups,
    check_space,
    rgb_to_ydbdr,
    split_channels,
    to_color_space,
)

__all__ = ["ColorSplitViews", "rgb_to_ydbdr", "to_color_space"]  # the conversions are re-exported

_DEFAULT_GROUPS = [[0], [1, 2]]
_AUGMENT_MODES = ("shared", "per-view")


class ColorSplitViews(nn.Module):
    """Split a colour space's channels into views: ``groups`` lists the channels of each view.

    ``augment = "shared"`` augments the RGB batch once and splits it (CMC: both views see the same
    crop); ``"per-view"`` augments once per view before converting (InfoMin-style independent views).
    Images must have 3 (RGB) channels; a batch with another count is a :class:`ShapeError`.

    Example:
        >>> import torch
        >>> maker = ColorSplitViews(space="lab", groups=[[0], [1], [2]])
        >>> maker.view_channels
        (1, 1, 1)
        >>> len(maker({"image": torch.rand(2, 3, 4, 4)}, lambda x, view: x))
        3
        >>> ColorSplitViews(space="hsv").view_names
        ('H', 'SV')
    """

    contrast_sign = 1.0

    def __init__(
        self,
        *,
        space: ColorSpace = "lab",
        groups: list[list[int]] | None = None,
        normalize: bool = True,
        augment: Literal["shared", "per-view"] = "shared",
    ) -> None:
        super().__init__()
        check_space(space)
        if augment not in _AUGMENT_MODES:
            raise InvalidParameter("augment", "must be 'shared' or 'per-view'", augment)
        self.space = space
        self.groups = check_channel_groups(groups if groups is not None else _DEFAULT_GROUPS, parameter="groups")
        self.normalize = normalize
        self.augment = augment

    @property
    def view_channels(self) -> tuple[int, ...]:
        """Channels of each view: the size of each group."""
        return tuple(len(g) for g in self.groups)

    @property
    def view_names(self) -> tuple[str, ...]:
        """Each view's channel names, e.g. ``("L", "ab")`` (for logs and plots)."""
        names = CHANNEL_NAMES[self.space]
        return tuple("".join(names[c] for c in g) for g in self.groups)

    def _split(self, converted: Tensor, view: int) -> Tensor:
        return split_channels(converted, self.groups[view])

    def _check_images(self, images: Tensor) -> None:
        if images.ndim != 4:
            raise ShapeError(f"views.color-split: expected images [B, 3, H, W], got shape {tuple(images.shape)}")
        channels = images.shape[1]
        if channels > 3:
            raise ShapeError(
                f"views.color-split: images have {channels} channels (e.g. paired-folder's RGB + depth) but "
                'color-split converts RGB only; use views = "rgbd" for RGB + depth views, or an RGB dataset'
            )
        if channels != 3:
            raise ShapeError(
                f"views.color-split: images have {channels} channel(s) but color-split needs RGB [B, 3, H, W]; "
                'use an RGB dataset, or views = "augmented-copies" with channels = '
                f"{channels} for views without a colour split"
            )

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``batch["image"]`` ``[B, 3, H, W]`` -> one ``[B, len(group), H', W']`` view per group."""
        images = batch["image"]
        self._check_images(images)
        if self.augment == "shared":
            converted = to_color_space(augment(images, 0), self.space, self.normalize)
            return [self._split(converted, i) for i in range(len(self.groups))]
        return [
            self._split(to_color_space(augment(images, i), self.space, self.normalize), i)
            for i in range(len(self.groups))
        ]

    def extra_repr(self) -> str:
        return f"space={self.space}, groups={self.groups}, normalize={self.normalize}, augment={self.augment}"
