"""Each colour conversion against a float64 reference written here from the standard definitions.

References are per-pixel numpy formulas, written independently of the code: the sRGB -> XYZ matrix
is derived from the sRGB primaries and the D65 white (CIE's tabulated XYZ); Kornia uses a 6-decimal
table, which is why XYZ / Lab / Luv are compared at ~1e-4 of their range, not 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.views import color_spaces
from contrastkit.views.color_spaces import COLOR_SPACES, NORMALIZATION, to_color_space

CORNERS = np.array([[r, g, b] for r in (0.0, 1.0) for g in (0.0, 1.0) for b in (0.0, 1.0)])


def _cube_edges(points_per_edge: int = 1025) -> np.ndarray:
    """The 12 edges of the RGB cube (corners included), ``[12 * points_per_edge, 3]``."""
    t = np.linspace(0.0, 1.0, points_per_edge)
    edges = []
    for axis in range(3):
        for a in (0.0, 1.0):
            for b in (0.0, 1.0):
                edge = np.empty((points_per_edge, 3))
                edge[:, axis] = t
                edge[:, [c for c in range(3) if c != axis]] = (a, b)
                edges.append(edge)
    return np.concatenate(edges)


def _colours(seed: int, n: int = 500) -> np.ndarray:
    """``n`` random colours plus the 8 cube corners, ``[N, 3]`` float64."""
    return np.concatenate([CORNERS, np.random.default_rng(seed).random((n, 3))])


def _as_images(rgb: np.ndarray) -> torch.Tensor:
    """``[N, 3]`` -> ``[1, 3, 1, N]`` float64 tensor."""
    return torch.from_numpy(rgb.T.copy()).reshape(1, 3, 1, -1)


def _as_pixels(image: torch.Tensor) -> np.ndarray:
    return image.detach().permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()


def _convert(rgb: np.ndarray, space: str, normalize: bool = False) -> np.ndarray:
    return _as_pixels(to_color_space(_as_images(rgb), space, normalize=normalize))


# ---- references ---------------------------------------------------------------------------------

D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # CIE 1931 2-degree D65 white, Y = 1
SRGB_PRIMARIES_XY = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))


def _xy_to_xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def reference_srgb_to_xyz_matrix() -> np.ndarray:
    """Columns: the primaries' XYZ, scaled so that R = G = B = 1 gives the D65 white (Y = 1)."""
    primaries = np.stack([_xy_to_xyz(*xy) for xy in SRGB_PRIMARIES_XY], axis=1)
    scale = np.linalg.solve(primaries, D65_WHITE)
    return primaries * scale


def reference_linear(rgb: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding."""
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def reference_xyz(rgb: np.ndarray) -> np.ndarray:
    return reference_linear(rgb) @ reference_srgb_to_xyz_matrix().T


EPSILON = (6 / 29) ** 3  # CIE: 216 / 24389
KAPPA = (29 / 3) ** 3  # CIE: 24389 / 27


def _lightness(y_ratio: np.ndarray) -> np.ndarray:
    return np.where(y_ratio > EPSILON, 116 * np.cbrt(y_ratio) - 16, KAPPA * y_ratio)


def reference_lab(rgb: np.ndarray) -> np.ndarray:
    t = reference_xyz(rgb) / D65_WHITE
    f = np.where(t > EPSILON, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def reference_luv(rgb: np.ndarray) -> np.ndarray:
    xyz = reference_xyz(rgb)
    white = D65_WHITE

    def chromaticity(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        denominator = c[..., 0] + 15 * c[..., 1] + 3 * c[..., 2]
        safe = np.where(denominator > 0, denominator, 1.0)  # black: u', v' undefined, but L = 0
        return 4 * c[..., 0] / safe, 9 * c[..., 1] / safe

    u_prime, v_prime = chromaticity(xyz)
    u_white, v_white = chromaticity(white)
    lightness = _lightness(xyz[:, 1] / white[1])
    return np.stack([lightness, 13 * lightness * (u_prime - u_white), 13 * lightness * (v_prime - v_white)], axis=1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]  # BT.601 luma


def reference_ycbcr(rgb: np.ndarray, cb_gain: float = 0.564, cr_gain: float = 0.713) -> np.ndarray:
    """BT.601 full range, unit scale; Kornia's gains 0.564, 0.713 round BT.601's 1/1.772, 1/1.402."""
    y = _luma(rgb)
    return np.stack([y, cb_gain * (rgb[:, 2] - y) + 0.5, cr_gain * (rgb[:, 0] - y) + 0.5], axis=1)


def reference_yiq(rgb: np.ndarray) -> np.ndarray:
    """FCC NTSC: U, V scaled to Umax = 0.436, Vmax = 0.615; I + jQ = (V + jU) e^{j 33deg}."""
    y = _luma(rgb)
    u = 0.436 * (rgb[:, 2] - y) / (1 - 0.114)
    v = 0.615 * (rgb[:, 0] - y) / (1 - 0.299)
    iq = (v + 1j * u) * np.exp(1j * np.deg2rad(33.0))
    return np.stack([y, iq.real, iq.imag], axis=1)


def reference_ydbdr(rgb: np.ndarray) -> np.ndarray:
    """SECAM: Db = 1.505 (B - Y), Dr = -1.902 (R - Y)."""
    y = _luma(rgb)
    return np.stack([y, 1.505 * (rgb[:, 2] - y), -1.902 * (rgb[:, 0] - y)], axis=1)


def reference_hsv(rgb: np.ndarray) -> np.ndarray:
    """Hue in radians [0, 2pi) (0 for greys), S = chroma / V (0 for black), V = max."""
    out = np.zeros_like(rgb)
    for n, (r, g, b) in enumerate(rgb):  # per pixel on purpose: an independent, obvious reference
        v, m = max(r, g, b), min(r, g, b)
        chroma = v - m
        if chroma == 0:
            hue = 0.0
        elif v == r:
            hue = ((g - b) / chroma) % 6
        elif v == g:
            hue = (b - r) / chroma + 2
        else:
            hue = (r - g) / chroma + 4
        out[n] = (hue * math.pi / 3, chroma / v if v > 0 else 0.0, v)
    return out


def _angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + math.pi) % (2 * math.pi) - math.pi


# ---- conversions --------------------------------------------------------------------------------


def test_srgb_matrix_reference_is_the_textbook_one() -> None:
    # Guards the reference itself: the matrix derived from primaries + white is the published one.
    expected = [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    np.testing.assert_allclose(reference_srgb_to_xyz_matrix(), expected, atol=5e-7)


@pytest.mark.parametrize(
    ("space", "reference", "atol"),
    [
        ("xyz", reference_xyz, 1e-4),  # Kornia's 6-decimal matrix vs primaries: at most 8e-5 per entry
        ("lab", reference_lab, 1e-2),  # on L in [0, 100]; the same matrix rounding, through cube roots
        ("luv", reference_luv, 1e-2),
        ("ycbcr", reference_ycbcr, 1e-12),
        ("yiq", reference_yiq, 1e-12),
        ("ydbdr", reference_ydbdr, 5e-4),  # the code's matrix is SECAM's, rounded to 3 decimals
        ("rgb", lambda rgb: rgb, 0.0),
    ],
)
def test_conversion_matches_reference(space: str, reference, atol: float) -> None:
    rgb = _colours(seed=len(space))
    np.testing.assert_allclose(_convert(rgb, space), reference(rgb), rtol=0, atol=atol)


def test_hsv_matches_reference() -> None:
    rgb = _colours(seed=7)
    ours, expected = _convert(rgb, "hsv"), reference_hsv(rgb)
    np.testing.assert_allclose(ours[:, 1:], expected[:, 1:], rtol=0, atol=1e-7)  # Kornia's eps in S
    chromatic = rgb.max(1) > rgb.min(1)
    np.testing.assert_allclose(_angle_difference(ours[chromatic, 0], expected[chromatic, 0]), 0.0, atol=1e-9)
    assert (ours[~chromatic, 0] == 0).all(), "greys must get hue 0"
    assert ((ours[:, 0] >= 0) & (ours[:, 0] < 2 * math.pi)).all(), "hue must lie in [0, 2pi)"


def test_ycbcr_is_bt601_up_to_kornias_rounded_gains() -> None:
    rgb = _colours(seed=3)
    exact = reference_ycbcr(rgb, cb_gain=1 / 1.772, cr_gain=1 / 1.402)
    np.testing.assert_allclose(_convert(rgb, "ycbcr"), exact, rtol=0, atol=5e-4)


def test_yiq_matrix_is_the_published_fcc_table() -> None:
    published = [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]]
    identity = np.eye(3)  # pure R, G, B: the output columns are the matrix's columns
    np.testing.assert_allclose(_convert(identity, "yiq").T, published, rtol=0, atol=1e-4)


def test_conversions_keep_dtype_and_shape() -> None:
    for dtype in (torch.float32, torch.float64):
        images = torch.rand(2, 3, 5, 4, dtype=dtype)
        for space in COLOR_SPACES:
            out = to_color_space(images, space)
            assert out.shape == images.shape and out.dtype == dtype, space


# ---- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [s for s in COLOR_SPACES if s != "hsv"])
def test_normalisation_maps_the_cube_extremes_to_plus_minus_one(space: str) -> None:
    # Every channel's extremes over the RGB cube lie on its edges: at corners for the linear spaces,
    # Lab and Luv's L, u; Luv's v is lowest at (0.44, 0, 1), on the edge G = 0, B = 1.
    out = _convert(_cube_edges(), space, normalize=True)
    np.testing.assert_allclose(out.min(0), -1.0, atol=1e-4)
    np.testing.assert_allclose(out.max(0), 1.0, atol=1e-4)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_normalised_colours_lie_in_unit_range_and_span_it(space: str) -> None:
    levels = np.linspace(0.0, 1.0, 9)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    out = _convert(np.concatenate([grid, _colours(seed=11, n=2000)]), space, normalize=True)
    assert out.min() >= -1.05 and out.max() <= 1.05, (out.min(0), out.max(0))
    assert (out.min(0) <= -0.9).all() and (out.max(0) >= 0.9).all(), (out.min(0), out.max(0))


def test_hsv_normalisation_is_hue_over_pi_and_unit_sv() -> None:
    rgb = _colours(seed=5)
    raw, normalised = reference_hsv(rgb), _convert(rgb, "hsv", normalize=True)
    expected = np.stack([(raw[:, 0] - math.pi) / math.pi, 2 * raw[:, 1] - 1, 2 * raw[:, 2] - 1], axis=1)
    chromatic = rgb.max(1) > rgb.min(1)
    np.testing.assert_allclose(
        _angle_difference(math.pi * normalised[chromatic, 0], math.pi * expected[chromatic, 0]), 0.0, atol=1e-9
    )
    np.testing.assert_allclose(normalised[:, 1:], expected[:, 1:], atol=1e-7)


def test_lab_and_ydbdr_keep_their_historical_constants() -> None:
    assert NORMALIZATION["lab"] == ((50.0, 6.025, -6.6895), (50.0, 92.208, 101.1675))  # CMC's
    assert NORMALIZATION["ydbdr"] == ((0.5, 0.0, 0.0), (0.5, 1.333, 1.333))


# ---- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_gradients_match_finite_differences(space: str) -> None:
    torch.manual_seed(0)
    # Away from HSV's sextant edges and the sRGB gamma knee, where the maths has kinks.
    images = (0.1 + 0.8 * torch.rand(1, 3, 2, 2, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: to_color_space(x, space), (images,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_gradients_are_finite_on_the_cube_corners(space: str) -> None:
    images = _as_images(CORNERS).float().requires_grad_()
    to_color_space(images, space).square().sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()


def test_constants_built_in_inference_mode_still_allow_backward() -> None:
    color_spaces._constant.cache_clear()
    images = torch.rand(1, 3, 2, 2, dtype=torch.float64)
    with torch.inference_mode():
        to_color_space(images, "yiq")  # fills the constant cache
    grad_input = images.clone().requires_grad_()
    to_color_space(grad_input, "yiq").sum().backward()
    assert grad_input.grad is not None


# ---- errors -------------------------------------------------------------------------------------


def test_unknown_space_names_the_parameter_and_close_matches() -> None:
    with pytest.raises(InvalidParameter, match=r"^space: unknown colour space; did you mean 'ycbcr'\?") as caught:
        to_color_space(torch.rand(1, 3, 2, 2), "ycrcb")  # type: ignore[arg-type]
    assert caught.value.parameter == "space" and caught.value.got == "ycrcb"
    with pytest.raises(InvalidParameter, match=r"known: lab, ydbdr, ycbcr, yiq, hsv, xyz, luv, rgb"):
        to_color_space(torch.rand(1, 3, 2, 2), "cmyk")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(1, 4, 2, 2), (1, 1, 2, 2), (3, 2, 2)])
def test_non_rgb_input_is_a_shape_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=r"images must be RGB \[B, 3, H, W\]"):
        to_color_space(torch.rand(shape), "lab")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_conversions_run_on_the_images_device() -> None:
    images = torch.rand(2, 3, 8, 8)
    for space in COLOR_SPACES:
        on_device = to_color_space(images.cuda(), space)
        assert on_device.device.type == "cuda", space
        torch.testing.assert_close(on_device.cpu(), to_color_space(images, space), atol=1e-4, rtol=1e-4)
