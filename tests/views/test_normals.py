"""Surface normals from depth: exact on planes (float64 reference), orientation, invariances, errors."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.views.normals import DepthToNormals, depth_to_normals, pinhole_intrinsics


def _plane_depth(normal: tuple[float, float, float], offset: float, height: int, width: int, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth of the plane ``n . X = offset`` seen by the documented pinhole camera, and its unit normal.

    Written from the camera model alone: pixel ``(u, v)`` looks along ``((u - cx) / f, (v - cy) / f, 1)``
    with ``f = (W / 2) / tan(fov / 2)``, ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``; the ray meets the plane
    at depth ``Z = offset / (n . ray)``.
    """
    n = torch.tensor(normal, dtype=torch.float64)
    n = n / n.norm()
    focal = (width / 2) / math.tan(math.radians(fov) / 2)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    ray = torch.stack([(u - (width - 1) / 2) / focal, (v - (height - 1) / 2) / focal, torch.ones_like(u)])
    depth = offset / torch.einsum("c,chw->hw", n, ray)
    assert bool((depth > 0).all()), "test plane must lie in front of the camera"
    # The normal facing the camera points back along the rays: n . X < 0 for the plane's points.
    facing = n if offset < 0 else -n
    return depth[None, None], facing


@pytest.mark.parametrize(
    ("normal", "fov", "size"),
    [((0.3, -0.5, -0.8), 50.0, (12, 20)), ((-0.6, 0.2, -0.7), 70.0, (16, 16)), ((0.1, 0.4, 0.9), 40.0, (9, 14))],
)
def test_a_tilted_plane_gives_its_analytic_normal(normal, fov, size) -> None:
    height, width = size
    depth, expected = _plane_depth(normal, -2.0 if normal[2] < 0 else 2.0, height, width, fov)
    normals = depth_to_normals(depth, field_of_view=fov)
    assert normals.dtype == torch.float64 and normals.shape == (1, 3, height, width)
    interior = normals[0, :, 1:-1, 1:-1]
    assert torch.allclose(interior, expected.view(3, 1, 1).expand_as(interior), atol=1e-9)
    assert expected[2] < 0  # the camera sees the plane's front


def test_the_wrong_field_of_view_tilts_the_normal() -> None:
    depth, expected = _plane_depth((0.3, -0.5, -0.8), -2.0, 12, 20, 50.0)
    wrong = depth_to_normals(depth, field_of_view=90.0)[0, :, 6, 10]
    assert (wrong - expected).abs().max() > 0.05


def test_a_fronto_parallel_plane_faces_the_camera() -> None:
    normals = depth_to_normals(torch.full((2, 1, 7, 9), 3.5, dtype=torch.float64))
    expected = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(normals, expected.expand_as(normals), atol=1e-12)


def test_orientation_signs() -> None:
    farther_right = torch.arange(8.0, dtype=torch.float64).expand(1, 1, 8, 8) + 20.0
    farther_down = farther_right.transpose(-1, -2)
    right, down = depth_to_normals(farther_right), depth_to_normals(farther_down)
    assert bool((right[:, 0] > 0).all()) and bool((right[:, 2] < 0).all())
    assert bool((down[:, 1] > 0).all()) and bool((down[:, 2] < 0).all())


def test_unit_length_and_invariance_to_the_depth_unit() -> None:
    torch.manual_seed(0)
    depth = torch.rand(3, 1, 10, 12, dtype=torch.float64) + 1.0
    normals = depth_to_normals(depth)
    assert torch.allclose(normals.norm(dim=1), torch.ones(3, 10, 12, dtype=torch.float64))
    assert torch.allclose(depth_to_normals(depth * 1000.0), normals, atol=1e-12)
    assert not torch.allclose(depth_to_normals(depth + 1.0), normals, atol=1e-3)  # an offset is not a unit


def test_half_precision_keeps_its_dtype_and_module_matches_function() -> None:
    depth = torch.rand(2, 1, 8, 8) + 1.0
    half = depth_to_normals(depth.half())
    assert half.dtype == torch.float16 and bool(torch.isfinite(half).all())
    assert torch.equal(DepthToNormals(field_of_view=60.0)(depth), depth_to_normals(depth, field_of_view=60.0))


def test_intrinsics_follow_the_field_of_view() -> None:
    k = pinhole_intrinsics(10, 20, field_of_view=60.0, dtype=torch.float64)
    assert math.isclose(float(k[0, 0]), 10.0 / math.tan(math.radians(30.0)))
    assert float(k[0, 0]) == float(k[1, 1]) and (float(k[0, 2]), float(k[1, 2])) == (9.5, 4.5)


def test_errors() -> None:
    with pytest.raises(ShapeError, match=r"normals: expected depth \[B, 1, H, W\].*\(2, 3, 4, 4\)"):
        depth_to_normals(torch.rand(2, 3, 4, 4))
    with pytest.raises(ShapeError, match="H, W >= 2"):
        depth_to_normals(torch.rand(1, 1, 1, 4))
    with pytest.raises(InvalidParameter, match=r"field_of_view: must be in \(0, 180\)"):
        depth_to_normals(torch.rand(1, 1, 4, 4), field_of_view=180.0)
    with pytest.raises(InvalidParameter, match="field_of_view"):
        DepthToNormals(field_of_view=0.0)
