"""The depth mode of ``colorful-moving-digits``: a tilted background plane with the digit raised out of it.

Depth is in 8-bit units, larger = farther: the background plane has depth ``mid`` (100..156) at the
image centre and changes by ``tilt`` (-50..50 per axis) across the image, and the digit's strokes
stand :data:`RELIEF` units nearer, in proportion to the glyph's coverage. The surface normals of that
relief are the optional three extra channels.

Example:
    >>> alpha = np.zeros((1, 4, 4)); alpha[0, 1:3, 1:3] = 1.0
    >>> depth = render_depth(alpha, np.array([100.0]), np.array([[0.0, 0.0]]))
    >>> float(depth[0, 0, 0]), float(depth[0, 1, 1]), surface_normals(depth)[0, :, 0, 0].tolist()
    (100.0, 76.0, [0.0, 0.0, -1.0])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["RELIEF", "depth_channels", "render_depth", "surface_normals"]

#: How far (depth units) the digit's strokes stand out of the background plane, towards the camera.
RELIEF = 24.0
# The background plane of depth mode: depth at the image centre, and the most it changes across the image.
_DEPTH_MID = (100.0, 156.0)
_DEPTH_TILT = 50.0


def render_depth(alpha: np.ndarray, mid: np.ndarray, tilt: np.ndarray, *, relief: float = RELIEF) -> np.ndarray:
    """Depth of a tilted plane with the digit raised out of it -> float64 ``[N, S, S]`` (larger = farther).

    ``alpha`` ``[N, S, S]`` is the digit's coverage in [0, 1]; the background plane is
    ``mid + tilt[:, 0] * u + tilt[:, 1] * v`` with ``u`` (along the width) and ``v`` (along the height)
    running from -0.5 to 0.5 across the image; the digit's strokes come ``relief * alpha`` nearer.

    Example:
        >>> alpha = np.zeros((1, 3, 3)); alpha[0, 1, 1] = 1.0
        >>> render_depth(alpha, np.array([100.0]), np.array([[20.0, 0.0]]), relief=10.0)[0].tolist()
        [[90.0, 100.0, 110.0], [90.0, 90.0, 110.0], [90.0, 100.0, 110.0]]
    """
    side = alpha.shape[-1]
    steps = np.linspace(-0.5, 0.5, side)
    plane = (mid[:, None, None] + tilt[:, 0, None, None] * steps[None, None, :]
             + tilt[:, 1, None, None] * steps[None, :, None])
    return plane - relief * alpha.astype(np.float64)


def surface_normals(depth: np.ndarray) -> np.ndarray:
    """Unit normals of the surface ``depth`` ``[N, S, S]`` -> float64 ``[N, 3, S, S]``, facing the camera.

    Camera coordinates: x along the width (+right), y along the height (+down), z along the depth
    (+farther), one depth unit counted as one pixel. The normal of ``z = depth(x, y)`` that faces the
    camera is ``(dz/dx, dz/dy, -1)`` normalised, so ``n_z < 0`` everywhere. Gradients are central
    differences (one-sided at the border): exact on the plane, which is linear.

    Example:
        >>> plane = np.tile(np.arange(4.0), (1, 4, 1))  # one unit farther per pixel to the right
        >>> surface_normals(plane)[0, :, 2, 2].round(4).tolist()
        [0.7071, 0.0, -0.7071]
    """
    d_dy, d_dx = np.gradient(depth, axis=(1, 2))
    normals = np.stack([d_dx, d_dy, -np.ones_like(depth)], axis=1)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def depth_channels(alpha: np.ndarray, rng: np.random.Generator, *, normals: bool) -> Tensor:
    """Depth (and normals) channels for digits of coverage ``alpha`` on random planes -> uint8 ``[N, 1 or 4, S, S]``.

    Each image gets its own plane (``mid`` and ``tilt`` drawn from ``rng``), the digit raised
    :data:`RELIEF` out of it; normals are stored as ``(n + 1) / 2 * 255``.

    Example:
        >>> depth_channels(np.zeros((2, 8, 8)), np.random.default_rng(0), normals=True).shape
        torch.Size([2, 4, 8, 8])
    """
    size: int = alpha.shape[0]
    mid = rng.uniform(*_DEPTH_MID, size=size)
    tilt = rng.uniform(-_DEPTH_TILT, _DEPTH_TILT, size=(size, 2))
    depth = render_depth(alpha, mid, tilt)
    channels = [np.clip(np.rint(depth), 0, 255)[:, None]]
    if normals:
        channels.append(np.clip(np.rint((surface_normals(depth) + 1) / 2 * 255), 0, 255))
    return torch.from_numpy(np.concatenate(channels, axis=1).astype(np.uint8))
