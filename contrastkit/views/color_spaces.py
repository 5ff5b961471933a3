"""RGB -> colour-space conversions for CMC's views, batch-wise on the images' device, differentiable.

Every function takes RGB ``[B, 3, H, W]`` in [0, 1] (non-linear sRGB, as images are stored) and
returns ``[B, 3, H, W]`` in the images' dtype and device. Kornia converts the spaces it has
(Lab, Luv, XYZ, HSV, YCbCr); YDbDr and YIQ, which Kornia lacks, are 3x3 matrices.

=========  ==================  ==============================================================
space      channels            definition (range over the RGB cube)
=========  ==================  ==============================================================
``lab``    L, a, b             CIE L*a*b*, D65 (Kornia); L [0, 100], a [-86.18, 98.23], b [-107.86, 94.48]
``ydbdr``  Y, Db, Dr           SECAM: Y = .299R+.587G+.114B, Db = 1.505(B-Y), Dr = -1.902(R-Y); Db, Dr [-1.333, 1.333]
``ycbcr``  Y, Cb, Cr           BT.601 full range (Kornia): Cb = .564(B-Y)+.5, Cr = .713(R-Y)+.5; all [0, 1]
``yiq``    Y, I, Q             FCC NTSC: YUV's U, V rotated by 33 degrees; I [-.5959, .5959], Q [-.5227, .5227]
``hsv``    H, S, V             Kornia: hue in radians [0, 2pi), S, V in [0, 1]
``xyz``    X, Y, Z             CIE XYZ, D65, after the sRGB gamma; X [0, .9505], Y [0, 1], Z [0, 1.0888]
``luv``    L, u, v             CIE L*u*v*, D65 (Kornia); L [0, 100], u [-83.08, 175.01], v [-134.10, 107.40]
``rgb``    R, G, B             unchanged, [0, 1]
=========  ==================  ==============================================================

Normalisation (``normalize=True``) maps channel ``c`` to ``(x_c - centre_c) / half_range_c``, about
[-1, 1]; see :data:`NORMALIZATION`. Lab keeps CMC's statistics (the same numbers). For the linear
spaces the centre and half-range are exact, from the cube's corners (the extremes of a linear map
of a cube are at its corners); for Luv they are the min and max over all 256^3 8-bit colours,
converted by Kornia in float64. HSV's hue stays one angle channel, ``(h - pi) / pi``, so red sits
at both ends of [-1, 1) (the hue circle is cut there); greys and black get hue 0 (Kornia's
convention), i.e. -1 after normalisation.

Example:
    >>> import torch
    >>> white = torch.ones(1, 3, 1, 1)
    >>> yiq = to_color_space(white, "yiq", normalize=False)  # white: full luma, no chroma
    >>> torch.allclose(yiq.flatten(), torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    True
    >>> [round(v, 3) for v in to_color_space(white, "hsv").flatten().tolist()]  # hue 0, no saturation
    [-1.0, -1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import kornia.color
import torch
from torch import Tensor

from contrastkit.errors import InvalidParameter, ShapeError, close_matches
from contrastkit.views._device_constants import device_constant

__all__ = [
    "CHANNEL_NAMES",
    "COLOR_SPACES",
    "NORMALIZATION",
    "ColorSpace",
    "check_channel_groups",
    "check_space",
    "normalize_channels",
    "rgb_to_ydbdr",
    "rgb_to_yiq",
    "split_channels",
    "srgb_to_xyz",
    "to_color_space",
]

ColorSpace = Literal["lab", "ydbdr", "ycbcr", "yiq", "hsv", "xyz", "luv", "rgb"]

#: Every space :func:`to_color_space` knows, in documentation order.
COLOR_SPACES: tuple[str, ...] = ("lab", "ydbdr", "ycbcr", "yiq", "hsv", "xyz", "luv", "rgb")

#: The three channels of each space, in order (index 0, 1, 2 of ``groups``).
CHANNEL_NAMES: dict[str, tuple[str, str, str]] = {
    "lab": ("L", "a", "b"),
    "ydbdr": ("Y", "Db", "Dr"),
    "ycbcr": ("Y", "Cb", "Cr"),
    "yiq": ("Y", "I", "Q"),
    "hsv": ("H", "S", "V"),
    "xyz": ("X", "Y", "Z"),
    "luv": ("L", "u", "v"),
    "rgb": ("R", "G", "B"),
}

#: ``(centre, half_range)`` per channel: ``normalize`` maps ``x`` to ``(x - centre) / half_range``.
#: Lab is CMC's statistics; YDbDr the numbers color-split always used (both exact cube ranges).
NORMALIZATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "lab": ((50.0, 6.025, -6.6895), (50.0, 92.208, 101.1675)),
    "ydbdr": ((0.5, 0.0, 0.0), (0.5, 1.333, 1.333)),
    "ycbcr": ((0.5, 0.5, 0.5), (0.5, 0.499704, 0.499813)),  # Cb: .564*.886, Cr: .713*.701
    "yiq": ((0.5, 0.0, 0.0), (0.5, 0.595919, 0.522742)),  # I, Q: sums of the positive matrix entries
    "hsv": ((math.pi, 0.5, 0.5), (math.pi, 0.5, 0.5)),
    "xyz": ((0.475228, 0.5, 0.544377), (0.475228, 0.5, 0.544377)),  # the white point / 2
    "luv": ((50.0, 45.968283, -13.349425), (50.0, 129.046191, 120.748478)),
    "rgb": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

# Rows give Y, Db, Dr as combinations of R, G, B (SECAM YDbDr: Db = 1.505(B-Y), Dr = -1.902(R-Y),
# rounded to 3 decimals as usually published).
_YDBDR = (
    (0.299, 0.587, 0.114),
    (-0.450, -0.883, 1.333),
    (-1.333, 1.116, 0.217),
)


def _yiq_matrix() -> tuple[tuple[float, ...], ...]:
    # FCC NTSC YIQ: U = 0.436 (B-Y) / (1 - 0.114), V = 0.615 (R-Y) / (1 - 0.299), then (I, Q) is
    # (V, U) rotated by 33 degrees. Computed rather than typed so the rows stay exact (the published
    # 4-decimal table 0.5959 -0.2746 -0.3213 / 0.2115 -0.5227 0.3112 is this, rounded).
    kr, kb = 0.299, 0.114
    kg = 1.0 - kr - kb
    y = (kr, kg, kb)
    u = tuple(0.436 / (1.0 - kb) * (blue - luma) for blue, luma in zip((0.0, 0.0, 1.0), y))
    v = tuple(0.615 / (1.0 - kr) * (red - luma) for red, luma in zip((1.0, 0.0, 0.0), y))
    cos, sin = math.cos(math.radians(33.0)), math.sin(math.radians(33.0))
    i = tuple(vc * cos - uc * sin for uc, vc in zip(u, v))
    q = tuple(vc * sin + uc * cos for uc, vc in zip(u, v))
    return (y, i, q)


_YIQ = _yiq_matrix()


_constant = device_constant  # cached per device and dtype: no host-to-device copy per step


def _check_rgb(images: Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ShapeError(f"to_color_space: images must be RGB [B, 3, H, W], got {tuple(images.shape)}")


def _apply_matrix(images: Tensor, rows: tuple[tuple[float, ...], ...]) -> Tensor:
    flat = tuple(x for row in rows for x in row)
    matrix = _constant(flat, images.device, images.dtype).view(3, 3)
    # einsum is a matmul (no TF32 by default), unlike a 1x1 conv2d, which cuDNN may run in TF32.
    return torch.einsum("ij,bjhw->bihw", matrix, images)


def rgb_to_ydbdr(images: Tensor) -> Tensor:
    """RGB ``[B, 3, H, W]`` in [0, 1] -> YDbDr (SECAM; Y in [0, 1], Db/Dr in [-1.333, 1.333]).

    Example:
        >>> import torch
        >>> [round(v, 4) for v in rgb_to_ydbdr(torch.ones(1, 3, 1, 1)).flatten().tolist()]  # white: no chroma
        [1.0, 0.0, 0.0]
    """
    _check_rgb(images)
    return _apply_matrix(images, _YDBDR)


def rgb_to_yiq(images: Tensor) -> Tensor:
    """RGB ``[B, 3, H, W]`` in [0, 1] -> YIQ (FCC NTSC; Y in [0, 1], I in ±0.5959, Q in ±0.5227).

    Example:
        >>> import torch
        >>> red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
        >>> [round(v, 4) for v in rgb_to_yiq(red).flatten().tolist()]
        [0.299, 0.5959, 0.2116]
    """
    _check_rgb(images)
    return _apply_matrix(images, _YIQ)


def srgb_to_xyz(images: Tensor) -> Tensor:
    """sRGB ``[B, 3, H, W]`` in [0, 1] -> CIE XYZ (D65): undo the sRGB gamma, then Kornia's matrix.

    (``kornia.color.rgb_to_xyz`` alone expects *linear* RGB.)

    Example:
        >>> import torch
        >>> [round(v, 4) for v in srgb_to_xyz(torch.ones(1, 3, 1, 1)).flatten().tolist()]  # D65 white
        [0.9505, 1.0, 1.0888]
    """
    _check_rgb(images)
    return kornia.color.rgb_to_xyz(kornia.color.rgb_to_linear_rgb(images))


_CONVERSIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "lab": kornia.color.rgb_to_lab,
    "ydbdr": rgb_to_ydbdr,
    "ycbcr": kornia.color.rgb_to_ycbcr,
    "yiq": rgb_to_yiq,
    "hsv": kornia.color.rgb_to_hsv,
    "xyz": srgb_to_xyz,
    "luv": kornia.color.rgb_to_luv,
    "rgb": lambda images: images,
}


def check_space(space: str) -> None:
    """Raise :class:`InvalidParameter` naming ``space`` (with close matches) unless it is known.

    Example:
        >>> check_space("lab")
        >>> check_space("ycrcb")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: space: unknown colour space; did you mean 'ycbcr'? (known: lab, ydbdr, ycbcr, yiq, hsv, xyz, luv, rgb) (got 'ycrcb')
    """
    if space in _CONVERSIONS:
        return
    matches = close_matches(str(space), COLOR_SPACES)
    hint = f"did you mean {' or '.join(repr(m) for m in matches)}? " if matches else ""
    raise InvalidParameter("space", f"unknown colour space; {hint}(known: {', '.join(COLOR_SPACES)})", space)


def normalize_channels(converted: Tensor, space: ColorSpace) -> Tensor:
    """Map each channel of ``space`` to about [-1, 1]: ``(x - centre) / half_range`` (:data:`NORMALIZATION`).

    Example:
        >>> import torch
        >>> lab = torch.tensor([100.0, 6.025, -6.6895]).view(1, 3, 1, 1)
        >>> normalize_channels(lab, "lab").flatten().tolist()
        [1.0, 0.0, 0.0]
    """
    check_space(space)
    centre, half_range = NORMALIZATION[space]
    centre_t = _constant(centre, converted.device, converted.dtype).view(1, 3, 1, 1)
    half_range_t = _constant(half_range, converted.device, converted.dtype).view(1, 3, 1, 1)
    # Subtract and divide (not a fused x * (1/h) + shift): exact where the constants allow, as before.
    return (converted - centre_t) / half_range_t


def to_color_space(images: Tensor, space: ColorSpace, normalize: bool = True) -> Tensor:
    """Convert RGB ``[B, 3, H, W]`` in [0, 1] to ``space``, optionally normalised (see the module doc).

    Example:
        >>> import torch
        >>> lab = to_color_space(torch.ones(1, 3, 2, 2), "lab", normalize=False)
        >>> round(float(lab[0, 0, 0, 0]), 3)
        100.0
        >>> to_color_space(torch.rand(2, 3, 4, 4), "luv").shape
        torch.Size([2, 3, 4, 4])
    """
    check_space(space)
    _check_rgb(images)
    converted = _CONVERSIONS[space](images)
    return normalize_channels(converted, space) if normalize else converted


def check_channel_groups(groups: object, *, parameter: str) -> list[list[int]]:
    """Validate channel ``groups`` of a 3-channel image, one group per view; errors name ``parameter``.

    At least two groups, each a non-empty list of the channel indices 0, 1, 2 without repeats (a
    channel may appear in several groups).

    Example:
        >>> check_channel_groups([[0], [1, 2]], parameter="groups")
        [[0], [1, 2]]
        >>> check_channel_groups([[0]], parameter="split")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: split: needs at least two groups (one per view), e.g. [[0], [1, 2]] (got [[0]])
    """
    if not isinstance(groups, (list, tuple)) or len(groups) < 2:
        raise InvalidParameter(parameter, "needs at least two groups (one per view), e.g. [[0], [1, 2]]", groups)
    checked = []
    for group in groups:
        if not isinstance(group, (list, tuple)) or not group:
            raise InvalidParameter(parameter, "each group must be a non-empty list of channel indices 0, 1, 2", groups)
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < 3 for c in group):
            raise InvalidParameter(parameter, "each group must list channel indices 0, 1 or 2", groups)
        if len(set(group)) != len(group):
            raise InvalidParameter(
                parameter, "a channel appears twice in one group; list each channel once per group", groups
            )
        checked.append(list(group))
    return checked


def split_channels(images: Tensor, group: Sequence[int]) -> Tensor:
    """The channels ``group`` of ``images [B, C, H, W]``, as slices (and one ``cat`` when not consecutive).

    ``images[:, group]`` with a list would copy an index tensor to the device every call; runs of
    consecutive channels are views of ``images`` instead.

    Example:
        >>> import torch
        >>> x = torch.arange(3.0).view(1, 3, 1, 1)
        >>> split_channels(x, [0, 2]).flatten().tolist(), split_channels(x, [1, 2]).data_ptr() == x[:, 1:].data_ptr()
        ([0.0, 2.0], True)
    """
    runs: list[tuple[int, int]] = []
    for c in group:
        if runs and runs[-1][1] == c:
            runs[-1] = (runs[-1][0], c + 1)
        else:
            runs.append((c, c + 1))
    parts = [images[:, start:stop] for start, stop in runs]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
