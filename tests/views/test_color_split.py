"""Colour conversions against float64 reference formulas; channel declarations and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.errors import InvalidParameter
from contrastkit.views.color_split import ColorSplitViews, to_color_space


def reference_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [N,3] in [0,1] -> CIE Lab (D65), float64, from the textbook formulas."""
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = linear @ m.T / np.array([0.950456, 1.0, 1.088754])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 4 / 29)
    L = np.where(xyz[:, 1] > 0.008856, 116 * np.cbrt(xyz[:, 1]) - 16, 903.3 * xyz[:, 1])
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return np.stack([L, a, b], axis=1)


def reference_ydbdr(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    db = -0.450 * r - 0.883 * g + 1.333 * b
    dr = -1.333 * r + 1.116 * g + 0.217 * b
    return np.stack([y, db, dr], axis=1)


def _pixels(image: torch.Tensor) -> np.ndarray:
    return image.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()


def test_lab_matches_reference() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 8, 8)
    ours = _pixels(to_color_space(rgb, "lab", normalize=False))
    np.testing.assert_allclose(ours, reference_lab(_pixels(rgb)), atol=0.05)


def test_ydbdr_matches_reference() -> None:
    torch.manual_seed(1)
    rgb = torch.rand(2, 3, 8, 8)
    ours = _pixels(to_color_space(rgb, "ydbdr", normalize=False))
    np.testing.assert_allclose(ours, reference_ydbdr(_pixels(rgb)), atol=1e-5)


@pytest.mark.parametrize("space", ["lab", "ydbdr"])
def test_normalised_channels_lie_roughly_in_unit_range(space: str) -> None:
    corners = torch.tensor([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], dtype=torch.float32)
    out = to_color_space(corners.T.reshape(1, 3, 2, 4), space)
    assert float(out.abs().max()) <= 1.05


@pytest.mark.parametrize(
    ("groups", "channels"),
    [([[0], [1, 2]], (1, 2)), ([[0], [1], [2]], (1, 1, 1)), ([[0, 1, 2], [0]], (3, 1)), ([[2, 0], [1]], (2, 1))],
)
def test_views_follow_groups(groups: list[list[int]], channels: tuple[int, ...]) -> None:
    maker = ColorSplitViews(space="ydbdr", groups=groups)
    assert maker.view_channels == channels
    rgb = torch.rand(3, 3, 4, 4)
    full = to_color_space(rgb, "ydbdr")
    views = maker({"image": rgb}, lambda x, view: x)
    for view, group in zip(views, groups):
        assert torch.equal(view, full[:, group])


def test_per_view_augmentation_calls_augment_once_per_view() -> None:
    calls: list[int] = []

    def augment(x: torch.Tensor, view: int) -> torch.Tensor:
        calls.append(view)
        return x

    ColorSplitViews(augment="per-view", groups=[[0], [1], [2]])({"image": torch.rand(2, 3, 4, 4)}, augment)
    assert calls == [0, 1, 2]
    calls.clear()
    ColorSplitViews(augment="shared")({"image": torch.rand(2, 3, 4, 4)}, augment)
    assert calls == [0]


@pytest.mark.parametrize("groups", [[[0]], [[0], []], [[0], [3]], [[-1], [1]]])
def test_bad_groups_name_the_parameter(groups: list[list[int]]) -> None:
    with pytest.raises(InvalidParameter, match="^groups: "):
        ColorSplitViews(groups=groups)


def test_channel_mismatch_is_a_shape_error() -> None:
    from contrastkit import Pipeline
    from contrastkit.errors import ShapeError

    class LyingViews(ColorSplitViews):
        @property
        def view_channels(self) -> tuple[int, ...]:
            return (1, 1)  # but the second group has two channels

    pipe = Pipeline(views=LyingViews(), encoder={"name": "convnet", "width": 4, "depth": 1})
    with pytest.raises(ShapeError, match=r"view 2 has shape \(2, 2, 8, 8\), expected \[B, 1, H, W\]"):
        pipe({"image": torch.rand(2, 3, 8, 8)})
