"""color-split: conversions (Lab, YDbDr), views per group for every space, validation and error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.testing import check_view_maker
from contrastkit.views.color_spaces import COLOR_SPACES
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

    class LyingViews(ColorSplitViews):
        @property
        def view_channels(self) -> tuple[int, ...]:
            return (1, 1)  # but the second group has two channels

    pipe = Pipeline(views=LyingViews(), encoder={"name": "convnet", "width": 4, "depth": 1})
    with pytest.raises(ShapeError, match=r"view 2 has shape \(2, 2, 8, 8\), expected \[B, 1, H, W\]"):
        pipe({"image": torch.rand(2, 3, 8, 8)})


# ---- every colour space ----------------------------------------------------------------------


def test_defaults_are_cmc_lab_l_versus_ab() -> None:
    maker = ColorSplitViews()
    assert (maker.space, maker.groups, maker.normalize, maker.augment) == ("lab", [[0], [1, 2]], True, "shared")
    rgb = torch.rand(2, 3, 4, 4)
    full = to_color_space(rgb, "lab")
    l_view, ab_view = maker({"image": rgb}, lambda x, view: x)
    assert torch.equal(l_view, full[:, :1]) and torch.equal(ab_view, full[:, 1:])
    # L spans [0, 100] -> [-1, 1] with CMC's statistics: black is -1, white is +1.
    black_white = torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)])
    assert maker({"image": black_white}, lambda x, view: x)[0].flatten().tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("space", COLOR_SPACES)
@pytest.mark.parametrize(("groups", "augment"), [([[0], [1, 2]], "shared"), ([[2], [0], [1]], "per-view")])
def test_contract_holds_for_every_space(space: str, groups: list[list[int]], augment: str) -> None:
    check_view_maker(ColorSplitViews(space=space, groups=groups, augment=augment), size=8)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_views_are_the_converted_channels(space: str) -> None:
    rgb = torch.rand(2, 3, 4, 4)
    full = to_color_space(rgb, space, normalize=False)
    views = ColorSplitViews(space=space, groups=[[1], [0, 2]], normalize=False)({"image": rgb}, lambda x, view: x)
    assert torch.equal(views[0], full[:, [1]]) and torch.equal(views[1], full[:, [0, 2]])


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_gradients_reach_the_rgb_images(space: str) -> None:
    # A learned view generator in front of color-split trains through these gradients.
    images = (0.05 + 0.9 * torch.rand(2, 3, 4, 4)).requires_grad_()
    views = ColorSplitViews(space=space, groups=[[0], [1], [2]])({"image": images}, lambda x, view: x)
    sum(v.square().sum() for v in views).backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and bool(images.grad.abs().sum() > 0)


def test_view_names_follow_the_space_channels() -> None:
    assert ColorSplitViews(space="ydbdr").view_names == ("Y", "DbDr")
    assert ColorSplitViews(space="rgb").view_names == ("R", "GB")
    assert ColorSplitViews(space="luv", groups=[[2, 0], [1]]).view_names == ("vL", "u")


@pytest.mark.parametrize(
    "groups",
    [[], [[0, 1, 2]], [[0], [1, 1]], [[0], [1.0]], [[0], [True]], [[0], ["1"]], [[0], 1]],
)
def test_more_bad_groups_name_the_parameter(groups: list) -> None:
    with pytest.raises(InvalidParameter, match="^groups: ") as caught:
        ColorSplitViews(groups=groups)
    assert caught.value.parameter == "groups"


def test_overlapping_groups_are_allowed_across_views() -> None:
    maker = ColorSplitViews(groups=[[0, 1, 2], [0], [0]])
    assert maker.view_channels == (3, 1, 1)


@pytest.mark.parametrize(("space", "suggestion"), [("ycrcb", "'ycbcr'"), ("Lab", "'lab'"), ("hvs", "'hsv'")])
def test_unknown_space_suggests_close_matches(space: str, suggestion: str) -> None:
    with pytest.raises(InvalidParameter, match=rf"^space: unknown colour space; did you mean {suggestion}"):
        ColorSplitViews(space=space)  # type: ignore[arg-type]


def test_unknown_augment_mode_names_the_parameter() -> None:
    with pytest.raises(InvalidParameter, match="^augment: must be 'shared' or 'per-view'"):
        ColorSplitViews(augment="independent")  # type: ignore[arg-type]


def test_rgb_plus_depth_images_point_to_the_rgbd_view_maker() -> None:
    with pytest.raises(ShapeError, match=r'^views\.color-split: images have 4 channels .*views = "rgbd"'):
        ColorSplitViews()({"image": torch.rand(2, 4, 8, 8)}, lambda x, view: x)


def test_grey_images_say_what_to_set() -> None:
    with pytest.raises(ShapeError, match=r'^views\.color-split: images have 1 channel.*"augmented-copies" with channels = 1'):
        ColorSplitViews()({"image": torch.rand(2, 1, 8, 8)}, lambda x, view: x)
    with pytest.raises(ShapeError, match=r"^views\.color-split: expected images \[B, 3, H, W\]"):
        ColorSplitViews()({"image": torch.rand(3, 8, 8)}, lambda x, view: x)


def test_pipeline_builds_one_encoder_per_group() -> None:
    from contrastkit import Pipeline

    pipe = Pipeline(
        views={"name": "color-split", "space": "yiq", "groups": [[0], [1], [2, 0]]},
        encoder={"name": "convnet", "width": 4, "depth": 1},
    )
    assert pipe.view_channels == (1, 1, 2)
    out = pipe({"image": torch.rand(2, 3, 8, 8), "index": torch.arange(2)})
    assert torch.isfinite(out.loss) and [v.shape[1] for v in out.views] == [1, 1, 2]
