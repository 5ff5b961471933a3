"""``color-split``: CMC's colour-space views — convert RGB to a colour space, split its channels.

Lab gives CMC's L | ab views; YDbDr gives Y | DbDr (CMC's best pair on ImageNet). Conversion runs
batch-wise on the images' device: Lab with Kornia, YDbDr by its 3x3 matrix (Kornia has no YDbDr).

Normalisation (``normalize = true``) maps each channel to roughly [-1, 1]:
    - Lab: CMC's statistics, mean ``(50, 6.025, -6.6895)``, std ``(50, 92.208, 101.1675)``
      (the midpoint and half-range of L in [0, 100], a in [-86.183, 98.233], b in [-107.857, 94.478]);
    - YDbDr: Y in [0, 1] -> ``(Y - 0.5) / 0.5``; Db, Dr in [-1.333, 1.333] -> divided by 1.333.

Example:
    >>> import torch
    >>> maker = ColorSplitViews(space="ydbdr", groups=[[0], [1, 2]])
    >>> l, ab = maker({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    >>> l.shape, ab.shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]))
"""

from __future__ import annotations

from typing import Literal

import kornia.color
import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch

__all__ = ["ColorSplitViews", "rgb_to_ydbdr", "to_color_space"]

# Rows give Y, Db, Dr as combinations of R, G, B (SECAM YDbDr).
_YDBDR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.450, -0.883, 1.333],
        [-1.333, 1.116, 0.217],
    ]
)
_NORMALISATION = {
    "lab": ((50.0, 6.025, -6.6895), (50.0, 92.208, 101.1675)),
    "ydbdr": ((0.5, 0.0, 0.0), (0.5, 1.333, 1.333)),
}
_DEFAULT_GROUPS = [[0], [1, 2]]


def rgb_to_ydbdr(images: Tensor) -> Tensor:
    """RGB ``[B, 3, H, W]`` in [0, 1] -> YDbDr ``[B, 3, H, W]`` (Y in [0, 1], Db/Dr in [-1.333, 1.333]).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in rgb_to_ydbdr(torch.ones(1, 3, 1, 1)).flatten().tolist()]  # white: no chroma
        [1.0, 0.0, 0.0]
    """
    matrix = _YDBDR.to(device=images.device, dtype=images.dtype)
    out = torch.einsum("ij,bjhw->bihw", matrix, images)
    return out


def to_color_space(images: Tensor, space: Literal["lab", "ydbdr"], normalize: bool = True) -> Tensor:
    """Convert RGB ``[B, 3, H, W]`` in [0, 1] to ``space``, optionally normalised (see module doc).

    Example:
        >>> import torch
        >>> lab = to_color_space(torch.ones(1, 3, 2, 2), "lab", normalize=False)
        >>> round(float(lab[0, 0, 0, 0]), 3)
        100.0
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ShapeError(f"color-split: expected RGB images [B, 3, H, W], got {tuple(images.shape)}")
    converted = kornia.color.rgb_to_lab(images) if space == "lab" else rgb_to_ydbdr(images)
    if normalize:
        mean, std = _NORMALISATION[space]
        mean_t = converted.new_tensor(mean).view(1, 3, 1, 1)
        std_t = converted.new_tensor(std).view(1, 3, 1, 1)
        converted = (converted - mean_t) / std_t
    return converted


class ColorSplitViews(nn.Module):
    """Split a colour space's channels into views: ``groups`` lists the channels of each view.

    ``augment = "shared"`` augments the RGB batch once and splits it (CMC: both views see the same
    crop); ``"per-view"`` augments once per view before converting (InfoMin-style independent views).

    Example:
        >>> import torch
        >>> maker = ColorSplitViews(space="lab", groups=[[0], [1], [2]])
        >>> maker.view_channels
        (1, 1, 1)
        >>> len(maker({"image": torch.rand(2, 3, 4, 4)}, lambda x, view: x))
        3
    """

    contrast_sign = 1.0

    def __init__(
        self,
        *,
        space: Literal["lab", "ydbdr"] = "lab",
        groups: list[list[int]] | None = None,
        normalize: bool = True,
        augment: Literal["shared", "per-view"] = "shared",
    ) -> None:
        super().__init__()
        groups = [list(g) for g in (groups if groups is not None else _DEFAULT_GROUPS)]
        if len(groups) < 2:
            raise InvalidParameter("groups", "needs at least two groups (one per view)", groups)
        for group in groups:
            if not group or any(not 0 <= c < 3 for c in group):
                raise InvalidParameter("groups", "each group must list channel indices 0, 1 or 2", groups)
        self.space = space
        self.groups = groups
        self.normalize = normalize
        self.augment = augment

    @property
    def view_channels(self) -> tuple[int, ...]:
        """Channels of each view: the size of each group."""
        return tuple(len(g) for g in self.groups)

    def _split(self, converted: Tensor, group: list[int]) -> Tensor:
        if group == list(range(group[0], group[0] + len(group))):
            return converted[:, group[0] : group[0] + len(group)]  # a slice, no copy
        return converted[:, group]

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``batch["image"]`` ``[B, 3, H, W]`` -> one ``[B, len(group), H', W']`` view per group."""
        images = batch["image"]
        if self.augment == "shared":
            converted = to_color_space(augment(images, 0), self.space, self.normalize)
            return [self._split(converted, g) for g in self.groups]
        return [
            self._split(to_color_space(augment(images, i), self.space, self.normalize), g)
            for i, g in enumerate(self.groups)
        ]

    def extra_repr(self) -> str:
        return f"space={self.space}, groups={self.groups}, augment={self.augment}"
