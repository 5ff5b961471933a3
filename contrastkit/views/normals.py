"""Surface normals from a depth map, batch-wise on the device, for the ``rgbd`` views.

Model: a pinhole camera with square pixels, principal point at the image centre and a horizontal
field of view ``field_of_view`` (degrees) across the width, so ``fx = fy = (W / 2) / tan(fov / 2)``,
``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``. Kornia unprojects every pixel to a 3-D point
(``kornia.geometry.depth.depth_to_normals``) and crosses the point cloud's Sobel gradients along the
width and the height. Because every point scales with the depth, multiplying the depth by a constant
(metres, millimetres, ``paired-folder``'s 8-bit ``raw / depth_scale``) leaves the normals unchanged;
an offset added to the depth does not. A plane gives its exact normal at every pixel.

Orientation (the convention of ``colorful-moving-digits``' normals): camera coordinates x along the
width (+right), y along the height (+down), z along the depth (+farther, so larger depth = farther);
the normal faces the camera. A fronto-parallel plane gives ``(0, 0, -1)``, a surface getting farther
to the right ``n_x > 0``, one getting farther downwards ``n_y > 0``; ``n_z < 0`` on every surface
the camera sees. ``field_of_view`` should match the camera that took the depth: NYU Depth v2's
Kinect sees about 63 degrees across its 640-pixel width, about 50 degrees across the centred square
``paired-folder`` keeps (the default). Pixels with no depth (0, NYU's holes) and their neighbours
get meaningless normals.

Example:
    >>> import torch
    >>> normals = depth_to_normals(torch.full((1, 1, 4, 4), 2.0))  # a wall facing the camera
    >>> normals[0, :, 1, 1].tolist()
    [0.0, 0.0, -1.0]
"""

from __future__ import annotations

import math

import torch
from kornia.geometry.depth import depth_to_normals as _kornia_depth_to_normals
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.views._device_constants import device_constant

__all__ = ["DepthToNormals", "depth_to_normals", "pinhole_intrinsics"]

DEFAULT_FIELD_OF_VIEW = 50.0


def _check_field_of_view(field_of_view: float) -> float:
    if not (math.isfinite(field_of_view) and 0.0 < field_of_view < 180.0):
        raise InvalidParameter("field_of_view", "must be in (0, 180) degrees (the camera's horizontal field of view)", field_of_view)
    return float(field_of_view)


def pinhole_intrinsics(
    height: int, width: int, *, field_of_view: float = DEFAULT_FIELD_OF_VIEW, dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``[3, 3]`` camera matrix of the module's pinhole model for ``height`` x ``width`` images.

    Example:
        >>> pinhole_intrinsics(3, 5, field_of_view=90.0).tolist()
        [[2.5, 0.0, 2.0], [0.0, 2.5, 1.0], [0.0, 0.0, 1.0]]
    """
    focal = (width / 2.0) / math.tan(math.radians(_check_field_of_view(field_of_view)) / 2.0)
    values = (focal, 0.0, (width - 1) / 2.0, 0.0, focal, (height - 1) / 2.0, 0.0, 0.0, 1.0)
    # Cached per device: depth_to_normals runs every training step.
    # A device-side copy of the cached constant: callers may modify what they get.
    return device_constant(values, torch.device(device if device is not None else "cpu"), dtype).view(3, 3).clone()


def depth_to_normals(depth: Tensor, *, field_of_view: float = DEFAULT_FIELD_OF_VIEW) -> Tensor:
    """Depth ``[B, 1, H, W]`` (larger = farther) -> unit normals ``[B, 3, H, W]`` facing the camera.

    See the module docstring for the camera model and the orientation. The result has ``depth``'s
    floating dtype (half precision is computed in float32, as Kornia does) and device.

    Example:
        >>> import torch
        >>> ramp = torch.arange(5.0).expand(1, 1, 5, 5) + 10.0  # farther to the right
        >>> bool((depth_to_normals(ramp)[:, 0] > 0).all())
        True
    """
    if depth.ndim != 4 or depth.shape[1] != 1 or min(depth.shape[-2:]) < 2:
        raise ShapeError(f"normals: expected depth [B, 1, H, W] with H, W >= 2, got {tuple(depth.shape)}")
    if not depth.is_floating_point():
        depth = depth.float()
    height, width = depth.shape[-2:]
    work = torch.float32 if depth.dtype in (torch.float16, torch.bfloat16) else depth.dtype
    camera = pinhole_intrinsics(height, width, field_of_view=field_of_view, dtype=work, device=depth.device)
    away = _kornia_depth_to_normals(depth.to(work), camera.expand(depth.shape[0], 3, 3))
    # Kornia's normal is d/dx x d/dy of the point cloud, which points away from the camera; 0 - x
    # rather than -x so that flat components read 0.0, not -0.0.
    return (0.0 - away).to(depth.dtype)


class DepthToNormals(nn.Module):
    """:func:`depth_to_normals` with a fixed ``field_of_view``, as a module (no parameters).

    Example:
        >>> import torch
        >>> DepthToNormals(field_of_view=60.0)(torch.rand(2, 1, 8, 8) + 1).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(self, *, field_of_view: float = DEFAULT_FIELD_OF_VIEW) -> None:
        super().__init__()
        self.field_of_view = _check_field_of_view(field_of_view)

    def forward(self, depth: Tensor) -> Tensor:
        """``[B, 1, H, W] -> [B, 3, H, W]``."""
        return depth_to_normals(depth, field_of_view=self.field_of_view)

    def extra_repr(self) -> str:
        return f"field_of_view={self.field_of_view}"
