"""``rgbd``: CMC's NYU Depth views — luminance L, chrominance ab, depth and surface normals.

CMC (seed 001, "NYU Depth V2") learns from up to four views of one RGB-D image: ``L`` and ``ab``
of Lab, the depth map and the surface normals. ``views`` picks any two or more of them, in the order
given (``graph = "core"`` makes the first one the core view; CMC's is L).

Input (``paired-folder``'s layout, or ``colorful-moving-digits`` with ``depth = true``):
``"image"`` ``[B, 4, H, W]`` (RGB, depth) or ``[B, 7, H, W]`` (RGB, depth, normals stored as
``(n + 1) / 2``), in [0, 1] after the pipeline's conversion, larger depth = farther.

Views (channels):

- ``L`` (1) and ``ab`` (2): Lab of the RGB with CMC's normalisation (``to_color_space``), about [-1, 1];
- ``depth`` (1): ``2 * depth - 1``, in [-1, 1];
- ``normals`` (3): unit normals, from channels 4:7 when the image has them (``normals_source =
  "auto"``), else computed from the depth (:func:`~contrastkit.views.normals.depth_to_normals`,
  pinhole camera with ``field_of_view``; ``normals_source = "depth"`` always computes them). The
  convention is :mod:`~contrastkit.views.normals`': x right, y down, z farther, facing the camera.

Augmentation: one shared spatial augmentation for every modality, so the views stay aligned pixel
for pixel. RGB, depth and normals are stacked (normals encoded ``(n + 1) / 2``) and go through view
0's augmentation in one call. contrastkit's device recipes (``crop-flip``, ``simclr``, ``infomin``)
move every channel with their crop, flip, rotate, shear and translate, and recolour, blur or jitter
only the first 3 (the RGB), so depth and normals are never colour-jittered; other views'
recipes are not used. A flip or rotation must also turn the normal vectors. Two extra ramp channels
(``x / (W - 1)``, ``y / (H - 1)``) travel through the augmentation as a probe; the median of
their finite differences gives each sample's linear map (output to input pixels), whose rotation or
reflection part is applied to ``(n_x, n_y)`` (a flip negates ``n_x``). Normals computed from the
depth are computed before the augmentation, on the whole image the field of view refers to. An
augmentation that recolours channels after the third, or replaces the stack (DataLoader-worker
augmentations such as ``albumentations``), does not fit; the latter is refused with a
:class:`~contrastkit.errors.ShapeError`.

Example:
    >>> import torch
    >>> maker = RGBDViews(views=["L", "depth", "normals"])
    >>> maker.view_channels
    (1, 1, 3)
    >>> views = maker({"image": torch.rand(2, 4, 8, 8)}, lambda x, view: x)
    >>> [tuple(v.shape) for v in views]
    [(2, 1, 8, 8), (2, 1, 8, 8), (2, 3, 8, 8)]
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch
from contrastkit.views._checks import check_view_names
from contrastkit.views.color_split import to_color_space
from contrastkit.views.normals import DEFAULT_FIELD_OF_VIEW, DepthToNormals

__all__ = ["RGBDViews", "orientation_from_probe", "probe_channels", "turn_normals"]

ModalityName = Literal["L", "ab", "depth", "normals"]

_CHANNELS = {"L": 1, "ab": 2, "depth": 1, "normals": 3}
_DEFAULT_VIEWS: list[ModalityName] = ["L", "ab", "depth", "normals"]


def probe_channels(batch_size: int, height: int, width: int, *, like: Tensor) -> Tensor:
    """Ramps ``[B, 2, H, W]``: channel 0 is ``x / (W - 1)``, channel 1 ``y / (H - 1)`` (both in [0, 1]).

    Example:
        >>> import torch
        >>> probe_channels(1, 2, 3, like=torch.zeros(())).tolist()
        [[[[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]]
    """
    xs = torch.linspace(0.0, 1.0, width, dtype=like.dtype, device=like.device)
    ys = torch.linspace(0.0, 1.0, height, dtype=like.dtype, device=like.device)
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)]).expand(batch_size, 2, height, width)


def orientation_from_probe(probe: Tensor, *, height: int, width: int) -> Tensor:
    """The rotation or reflection ``[B, 2, 2]`` an augmentation applied, from its augmented probe.

    ``probe`` ``[B, 2, H', W']`` is :func:`probe_channels` of an ``height x width`` image after the
    augmentation. The medians of its finite differences give ``A`` (input pixels per output pixel,
    x then y), robust to fill at rotated or translated borders; the result is the orthogonal factor
    of ``A``'s inverse, the map that turns input directions into output ones: ``diag(-1, 1)`` for a
    horizontal flip, whatever the zoom. A probe with no gradient left gives the identity.

    Example:
        >>> import torch
        >>> probe = probe_channels(1, 4, 6, like=torch.zeros(()))
        >>> orientation_from_probe(probe.flip(-1), height=4, width=6)[0].tolist()
        [[-1.0, 0.0], [0.0, 1.0]]
    """
    along_x = (probe[..., :, 1:] - probe[..., :, :-1]).flatten(2).median(dim=2).values  # [B, 2]: d(x, y)/d out_x
    along_y = (probe[..., 1:, :] - probe[..., :-1, :]).flatten(2).median(dim=2).values
    # [B, 2, 2]: A[i, j] = d in_i / d out_j; probe rows are x, y in [0, 1]: scale them to pixels.
    a = torch.stack([along_x, along_y], dim=2)
    a = torch.stack([a[:, 0] * (width - 1), a[:, 1] * (height - 1)], dim=1)
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    # Polar factor of a 2x2 matrix in closed form: A + sign(det) * cofactor(A) is a multiple of it.
    cofactor = torch.stack([torch.stack([a[:, 1, 1], -a[:, 1, 0]], 1), torch.stack([-a[:, 0, 1], a[:, 0, 0]], 1)], 1)
    sign = torch.where(det < 0, -1.0, 1.0).to(a.dtype).view(-1, 1, 1)
    polar = a + sign * cofactor
    norm = polar[:, :, 0].norm(dim=1).view(-1, 1, 1)
    identity = torch.eye(2, dtype=a.dtype, device=a.device).expand_as(a)
    rotation = torch.where(norm > 1e-6, polar / norm.clamp_min(1e-6), identity)
    return rotation.transpose(1, 2)  # orthogonal: the inverse of A's factor is its transpose


def turn_normals(normals: Tensor, orientation: Tensor) -> Tensor:
    """Apply ``orientation`` ``[B, 2, 2]`` to the image-plane part ``(n_x, n_y)`` of ``normals`` ``[B, 3, H, W]``.

    Example:
        >>> import torch
        >>> flip = torch.tensor([[[-1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
        >>> turn_normals(torch.tensor([0.6, 0.0, -0.8], dtype=torch.float64).view(1, 3, 1, 1), flip).flatten().tolist()
        [-0.6, 0.0, -0.8]
    """
    planar = torch.einsum("bij,bjhw->bihw", orientation.to(normals.dtype), normals[:, :2])
    return torch.cat([planar, normals[:, 2:]], dim=1)


class RGBDViews(nn.Module):
    """Views ``views`` (from L, ab, depth, normals) of an RGB-D batch; see the module docstring.

    ``image_channels`` lists the image channel counts it reads (RGB + depth, and + normals).

    Example:
        >>> import torch
        >>> maker = RGBDViews()
        >>> maker.view_channels, RGBDViews.image_channels
        ((1, 2, 1, 3), (4, 7))
        >>> RGBDViews()({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: views.rgbd: expected RGB + depth [B, 4, H, W] or RGB + depth + normals [B, 7, H, W], got (2, 3, 8, 8); use a dataset with depth (paired-folder, or colorful-moving-digits with data.depth = true)
    """

    contrast_sign = 1.0
    #: The image channel counts this view maker reads: RGB + depth, or RGB + depth + normals.
    image_channels: ClassVar[tuple[int, ...]] = (4, 7)

    def __init__(
        self,
        *,
        views: list[ModalityName] | None = None,
        normals_source: Literal["auto", "depth"] = "auto",
        field_of_view: float = DEFAULT_FIELD_OF_VIEW,
    ) -> None:
        super().__init__()
        names = check_view_names(views if views is not None else list(_DEFAULT_VIEWS), tuple(_CHANNELS))
        if normals_source not in ("auto", "depth"):
            raise InvalidParameter("normals_source", "must be 'auto' (the image's normals if any) or 'depth'", normals_source)
        self.views = names
        self.normals_source = normals_source
        self.to_normals = DepthToNormals(field_of_view=field_of_view)

    @property
    def view_channels(self) -> tuple[int, ...]:
        """L 1, ab 2, depth 1, normals 3, in the order of ``views``."""
        return tuple(_CHANNELS[name] for name in self.views)

    def _check(self, image: Tensor) -> None:
        if image.ndim != 4 or image.shape[1] not in self.image_channels:
            raise ShapeError(
                f"views.rgbd: expected RGB + depth [B, 4, H, W] or RGB + depth + normals [B, 7, H, W], got "
                f"{tuple(image.shape)}; use a dataset with depth (paired-folder, or colorful-moving-digits with "
                "data.depth = true)"
            )

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``"image"`` ``[B, 4 or 7, H, W]`` -> one view ``[B, C_i, H', W']`` per entry of ``views``."""
        image = batch["image"]
        self._check(image)
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        b, channels, height, width = image.shape
        stack = [image[:, :4]]  # RGB, depth
        wants_normals = "normals" in self.views
        if wants_normals:
            if channels == 7 and self.normals_source == "auto":
                stack.append(image[:, 4:7])
            else:  # computed on the un-augmented image, which the field of view describes
                stack.append((self.to_normals(image[:, 3:4]) + 1.0) / 2.0)
            stack.append(probe_channels(b, height, width, like=image))
        stacked = torch.cat(stack, dim=1)
        out = augment(stacked, 0)  # one call: the same crop and flip for every modality
        if out.ndim != 4 or out.shape[:2] != stacked.shape[:2]:
            raise ShapeError(
                f"views.rgbd: the augmentation returned {tuple(out.shape)} for the stacked RGB, depth"
                f"{', normals and probe' if wants_normals else ''} {tuple(stacked.shape)}; rgbd needs a device "
                "augmentation that keeps the channels (none, crop-flip, simclr, infomin), not a DataLoader-worker one"
            )
        result: dict[str, Tensor] = {}
        if "L" in self.views or "ab" in self.views:
            lab = to_color_space(out[:, :3], "lab", normalize=True)
            result["L"], result["ab"] = lab[:, :1], lab[:, 1:]
        result["depth"] = out[:, 3:4] * 2.0 - 1.0
        if wants_normals:
            orientation = orientation_from_probe(out[:, 7:9], height=height, width=width)
            normals = turn_normals(out[:, 4:7] * 2.0 - 1.0, orientation)
            result["normals"] = F.normalize(normals, dim=1, eps=1e-6)  # resampling shortens unit vectors
        return [result[name] for name in self.views]

    def extra_repr(self) -> str:
        return f"views={self.views}, normals_source={self.normals_source!r}, field_of_view={self.to_normals.field_of_view}"
