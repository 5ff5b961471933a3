"""Shared by the recipe augmentations: parameter checks, colour-jitter strengths, blur kernel, channel rule.

Channel rule (the same on the device and in DataLoader workers): crop, flip and RandAugment's
rotate / shear / translate move every channel together; every other op (colour jitter, grayscale,
blur, RandAugment's intensity ops) touches the first 3 channels only, so extra channels stacked
after RGB (depth, normals, ...) are moved but never recoloured. Images with 1 or 2 channels have no
RGB to recolour: colour jitter, grayscale and RandAugment's ``color`` (saturation) are skipped, and
blur and the other intensity ops act on all channels.

Example:
    >>> photometric_channels(4), photometric_channels(2), has_rgb(1)
    (3, 2, False)
    >>> blur_kernel_size(224, 224), blur_kernel_size(32, 32)
    (23, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from contrastkit.errors import InvalidParameter

__all__ = [
    "blur_kernel_size",
    "check_interval",
    "check_probability",
    "check_size",
    "check_strength",
    "has_rgb",
    "jitter_strengths",
    "photometric_channels",
]


def photometric_channels(channels: int) -> int:
    """How many leading channels the intensity ops touch: RGB when present, else all.

    Example:
        >>> photometric_channels(3)
        3
    """
    return min(channels, 3)


def has_rgb(channels: int) -> bool:
    """Whether colour ops (jitter, grayscale, saturation) apply: they need 3 channels.

    Example:
        >>> has_rgb(3), has_rgb(2)
        (True, False)
    """
    return channels >= 3


def blur_kernel_size(height: int, width: int) -> int:
    """SimCLR's blur kernel: about 10% of the image side, odd, at least 3 (23 for 224 pixels).

    Example:
        >>> blur_kernel_size(96, 96)
        11
    """
    k = int(round(0.1 * min(height, width)))  # noqa: RUF046 - with numpy < 2, round() of a numpy float stays a float
    return max(3, k if k % 2 else k + 1)


def jitter_strengths(strength: float, hue: float) -> tuple[float, float, float, float]:
    """``(brightness, contrast, saturation, hue)`` of SimCLR-style jitter ``(0.8, 0.8, 0.8, hue) * s``.

    Example:
        >>> jitter_strengths(0.5, 0.2)
        (0.4, 0.4, 0.4, 0.1)
    """
    return (0.8 * strength, 0.8 * strength, 0.8 * strength, hue * strength)


def check_strength(strength: float, hue: float) -> float:
    """Validate the jitter strength ``s``: ``>= 0`` and ``hue * s <= 0.5`` (a hue shift wraps at 0.5).

    Example:
        >>> check_strength(1.0, 0.4)
        1.0
        >>> check_strength(2.0, 0.4)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: strength: must be in [0, 1.25]: the hue jitter 0.4 * strength must stay <= 0.5 (got 2.0)
    """
    limit = 0.5 / hue
    if not (math.isfinite(strength) and 0 <= strength <= limit):
        raise InvalidParameter(
            "strength", f"must be in [0, {limit:g}]: the hue jitter {hue:g} * strength must stay <= 0.5", strength
        )
    return float(strength)


def check_probability(name: str, value: float) -> float:
    """Validate a probability in [0, 1].

    Example:
        >>> check_probability("blur_p", 0.5)
        0.5
    """
    if not 0 <= value <= 1:
        raise InvalidParameter(name, "must be a probability in [0, 1]", value)
    return float(value)


def check_interval(
    name: str, value: Sequence[float], *, low: float, high: float | None = None, low_open: bool = True
) -> tuple[float, float]:
    """Validate ``[min, max]`` with ``low < min <= max (<= high)`` (``low <= min`` if not ``low_open``).

    Example:
        >>> check_interval("crop_scale", [0.2, 1], low=0, high=1)
        (0.2, 1.0)
        >>> check_interval("crop_scale", (0.5, 0.2), low=0, high=1)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: crop_scale: must be [min, max] with 0 < min <= max <= 1 (got [0.5, 0.2])
    """
    pair = tuple(float(v) for v in value)
    bound = f"{low:g} {'<' if low_open else '<='} min <= max" + ("" if high is None else f" <= {high:g}")
    ok = len(pair) == 2 and (pair[0] > low if low_open else pair[0] >= low) and pair[0] <= pair[1]
    if not ok or (high is not None and pair[1] > high) or not all(math.isfinite(v) for v in pair):
        raise InvalidParameter(name, f"must be [min, max] with {bound}", list(value))
    return pair[0], pair[1]


def check_size(size: int | None) -> int | None:
    """Validate an optional square output size (``None`` keeps the input size).

    Example:
        >>> check_size(32), check_size(None)
        (32, None)
    """
    if size is not None and size < 1:
        raise InvalidParameter("size", "must be a positive number of pixels, or left out to keep the input size", size)
    return size
