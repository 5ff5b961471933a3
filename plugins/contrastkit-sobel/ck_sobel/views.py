"""``sobel``: contrast an image's intensity (luminance, or RGB) with its Sobel edge map.

View 1 is the image's luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` (``first = "gray"``, 1 channel)
or the RGB image itself (``first = "rgb"``, 3 channels). View 2 is the Sobel edge map of the
luminance, computed batch-wise on the images' device with :func:`kornia.filters.spatial_gradient`
(normalised 3x3 Sobel kernels, replicate padding, so a constant image has no edges, borders
included): ``edges = "magnitude"`` gives ``sqrt(gx^2 + gy^2)`` (1 channel), ``edges = "xy"`` gives
the signed gradients ``gx, gy`` (2 channels).

What the two views share is the shape of the content (where the strokes are); what only the
intensity view carries is colour and flat-region brightness. So an encoder trained to match them is
pushed towards shape and away from the background colour, the nuisance factor of
colorful-moving-digits.

Normalisation (``normalize``) for images in [0, 1]:
    - ``"fixed"`` (default): intensity ``(x - 0.5) / 0.5`` -> [-1, 1]; the kernels' normalised
      gradients lie in [-0.5, 0.5], so ``gx, gy`` are divided by 0.5 -> [-1, 1] and the magnitude by
      ``sqrt(0.5)`` -> [0, 1];
    - ``"per-image"``: each view's channels are standardised per image (zero mean, unit std);
    - ``"none"``: intensity in [0, 1], raw normalised-Sobel responses.

Example:
    >>> import torch
    >>> maker = SobelViews(first="gray", edges="xy")
    >>> gray, edges = maker({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    >>> gray.shape, edges.shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]))
"""

from __future__ import annotations

from typing import Literal

import kornia.color
import kornia.filters
import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch

__all__ = ["SobelViews", "luminance", "sobel_edges"]

_FIRST = ("gray", "rgb")
_EDGES = ("magnitude", "xy")
_NORMALIZE = ("fixed", "per-image", "none")
_AUGMENT = ("shared", "per-view")
#: The largest |gx| or |gy| of kornia's normalised Sobel kernel on an image in [0, 1].
_MAX_GRADIENT = 0.5


def luminance(images: Tensor) -> Tensor:
    """Rec. 601 luminance ``[B, 1, H, W]`` of RGB ``[B, 3, H, W]`` (a 1-channel batch is returned as is).

    Example:
        >>> import torch
        >>> [round(v, 3) for v in luminance(torch.eye(3).view(3, 3, 1, 1)).flatten().tolist()]  # R, G, B
        [0.299, 0.587, 0.114]
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ShapeError(f"sobel: expected images [B, 3, H, W] or [B, 1, H, W], got {tuple(images.shape)}")
    if images.shape[1] == 1:
        return images
    return kornia.color.rgb_to_grayscale(images)


def sobel_edges(gray: Tensor, edges: Literal["magnitude", "xy"] = "magnitude") -> Tensor:
    """Sobel edges of ``gray`` ``[B, 1, H, W]``: magnitude ``[B, 1, H, W]`` or ``gx, gy`` ``[B, 2, H, W]``.

    Uses kornia's normalised Sobel kernels (responses in [-0.5, 0.5] for inputs in [0, 1]). The
    magnitude is exactly 0 where both gradients are 0, and its gradient stays finite there.

    Example:
        >>> import torch
        >>> step = torch.zeros(1, 1, 4, 6)
        >>> step[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
        >>> sobel_edges(step)[0, 0, 0].tolist()
        [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]
        >>> sobel_edges(step, "xy").shape
        torch.Size([1, 2, 4, 6])
    """
    if edges not in _EDGES:
        raise InvalidParameter("edges", "must be 'magnitude' or 'xy'", edges)
    grad = kornia.filters.spatial_gradient(gray, mode="sobel", order=1, normalized=True)  # [B, C, 2, H, W]
    gx, gy = grad[:, :, 0], grad[:, :, 1]
    if edges == "xy":
        return torch.cat([gx, gy], dim=1)
    squared = gx.square() + gy.square()
    nonzero = squared > 0
    # sqrt has an infinite derivative at 0: take it only where it is positive (the "double where").
    safe = torch.where(nonzero, squared, torch.ones_like(squared))
    return torch.where(nonzero, safe.sqrt(), torch.zeros_like(squared))


def _standardise(x: Tensor, eps: float = 1e-5) -> Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


class SobelViews(nn.Module):
    """Two views of each image: its intensity (``first``) and its Sobel edge map (``edges``).

    ``augment = "shared"`` augments the RGB batch once and derives both views from it (they see the
    same crop); ``"per-view"`` augments once per view (independent crops, as in SimCLR/InfoMin).
    The view maker has no parameters; ``contrast_sign`` is ``1.0`` (it plays along with the
    encoders). See the module docstring for the normalisation.

    Example:
        >>> import torch
        >>> maker = SobelViews(first="rgb", edges="magnitude", normalize="none")
        >>> maker.view_channels
        (3, 1)
        >>> rgb, edges = maker({"image": torch.rand(4, 3, 16, 16)}, lambda x, view: x)
        >>> tuple(rgb.shape), tuple(edges.shape), bool((edges >= 0).all())
        ((4, 3, 16, 16), (4, 1, 16, 16), True)
    """

    contrast_sign = 1.0

    def __init__(
        self,
        *,
        first: Literal["gray", "rgb"] = "gray",
        edges: Literal["magnitude", "xy"] = "magnitude",
        normalize: Literal["fixed", "per-image", "none"] = "fixed",
        augment: Literal["shared", "per-view"] = "shared",
    ) -> None:
        super().__init__()
        for parameter, value, choices in (
            ("first", first, _FIRST),
            ("edges", edges, _EDGES),
            ("normalize", normalize, _NORMALIZE),
            ("augment", augment, _AUGMENT),
        ):
            if value not in choices:
                raise InvalidParameter(parameter, "must be one of " + ", ".join(repr(c) for c in choices), value)
        self.first = first
        self.edges = edges
        self.normalize = normalize
        self.augment = augment

    @property
    def view_channels(self) -> tuple[int, ...]:
        """``(C_1, C_2)``: 1 (gray) or 3 (rgb), then 1 (magnitude) or 2 (xy)."""
        return (1 if self.first == "gray" else 3, 1 if self.edges == "magnitude" else 2)

    def intensity_view(self, images: Tensor) -> Tensor:
        """View 1 of (already augmented) images ``[B, 3, H, W]``: ``[B, C_1, H, W]``, normalised.

        Example:
            >>> import torch
            >>> SobelViews(first="gray").intensity_view(torch.ones(1, 3, 2, 2)).flatten().tolist()  # white
            [1.0, 1.0, 1.0, 1.0]
        """
        if self.first == "rgb":
            if images.ndim != 4 or images.shape[1] != 3:
                raise ShapeError(f"views.sobel: first = 'rgb' needs RGB images [B, 3, H, W], got {tuple(images.shape)}")
            view = images
        else:
            view = luminance(images)
        if self.normalize == "fixed":
            return (view - 0.5) / 0.5
        if self.normalize == "per-image":
            return _standardise(view)
        return view

    def edge_view(self, images: Tensor) -> Tensor:
        """View 2 of (already augmented) images ``[B, 3, H, W]``: ``[B, C_2, H, W]``, normalised.

        Example:
            >>> import torch
            >>> edges = SobelViews(edges="xy").edge_view(torch.rand(2, 3, 8, 8))
            >>> edges.shape, bool(edges.abs().max() <= 1)
            (torch.Size([2, 2, 8, 8]), True)
        """
        edge_map = sobel_edges(luminance(images), self.edges)
        if self.normalize == "fixed":
            scale = _MAX_GRADIENT if self.edges == "xy" else _MAX_GRADIENT * 2**0.5
            return edge_map / scale
        if self.normalize == "per-image":
            return _standardise(edge_map)
        return edge_map

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``batch["image"]`` ``[B, 3, H, W]`` -> ``[intensity [B, C_1, H', W'], edges [B, C_2, H', W']]``."""
        images = batch["image"]
        if self.augment == "shared":
            augmented = augment(images, 0)
            return [self.intensity_view(augmented), self.edge_view(augmented)]
        return [self.intensity_view(augment(images, 0)), self.edge_view(augment(images, 1))]

    def extra_repr(self) -> str:
        return f"first={self.first}, edges={self.edges}, normalize={self.normalize}, augment={self.augment}"
