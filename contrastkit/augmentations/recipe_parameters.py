"""The parameters the ``simclr``, ``infomin`` and ``albumentations`` recipes share, checked in one place.

:class:`RecipeParameters` is the base class of the three recipes: it checks every shared parameter
(crop, flip, colour jitter, grayscale, blur, output size and, for InfoMin's recipe, RandAugment's)
in one order with one message each, and keeps them as attributes. Also here: what the recipes
derive from them, the colour-jitter strengths and SimCLR's blur kernel. The device recipes' shared
steps are in :mod:`contrastkit.augmentations.device_recipe`.

Example:
    >>> blur_kernel_size(224, 224), blur_kernel_size(32, 32)
    (23, 3)
    >>> check_probability("flip_p", 1.5)
    Traceback (most recent call last):
    ...
    contrastkit.errors.InvalidParameter: flip_p: must be a probability in [0, 1] (got 1.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from contrastkit.augmentations.rand_augment import check_rand_augment
from contrastkit.errors import InvalidParameter

__all__ = [
    "HUE",
    "RecipeParameters",
    "blur_kernel_size",
    "check_interval",
    "check_probability",
    "check_size",
    "check_strength",
    "jitter_strengths",
]

#: Each recipe's hue jitter at strength 1 (SimCLR's 0.2; InfoMin's code uses 0.4): it bounds ``strength``.
HUE = {"simclr": 0.2, "infomin": 0.4}


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


class RecipeParameters(nn.Module):
    """Base class of the recipes: checks the shared parameters and keeps them as attributes.

    The recipes pass every parameter (their signatures hold the defaults). ``hue`` is the recipe's hue
    jitter at strength 1 (SimCLR 0.2, InfoMin 0.4); it bounds ``strength`` and sets ``jitter_strengths``. The
    ``randaugment_*`` attributes exist only when ``randaugment_ops`` is given.

    Example:
        >>> from contrastkit.augmentations.infomin import InfoMinAugmentation
        >>> aug = InfoMinAugmentation(strength=0.5, size=16)
        >>> isinstance(aug, RecipeParameters), aug.jitter_strengths, aug.randaugment_magnitude
        (True, (0.4, 0.4, 0.4, 0.2), 10.0)
    """

    def __init__(
        self,
        *,
        hue: float,
        strength: float,
        crop_scale: Sequence[float],
        crop_ratio: Sequence[float],
        flip_p: float,
        jitter_p: float,
        grayscale_p: float,
        blur_p: float,
        blur_sigma: Sequence[float],
        randaugment_ops: int | None = None,
        randaugment_magnitude: float = 10.0,
        randaugment_p: float = 0.5,
        size: int | None,
    ) -> None:
        super().__init__()
        self.strength = check_strength(strength, hue)
        self.crop_scale = check_interval("crop_scale", crop_scale, low=0, high=1)
        self.crop_ratio = check_interval("crop_ratio", crop_ratio, low=0)
        self.blur_sigma = check_interval("blur_sigma", blur_sigma, low=0)
        self.flip_p = check_probability("flip_p", flip_p)
        self.jitter_p = check_probability("jitter_p", jitter_p)
        self.grayscale_p = check_probability("grayscale_p", grayscale_p)
        self.blur_p = check_probability("blur_p", blur_p)
        if randaugment_ops is not None:
            self.randaugment_ops, self.randaugment_magnitude, self.randaugment_p = check_rand_augment(
                num_ops=randaugment_ops, magnitude=randaugment_magnitude, p=randaugment_p
            )
        self.size = check_size(size)
        self.jitter_strengths = jitter_strengths(self.strength, hue)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(size, size)``, or the input's ``(height, width)`` without ``size``.

        Example:
            >>> from contrastkit.augmentations.simclr import SimCLRAugmentation
            >>> SimCLRAugmentation().output_size(8, 6), SimCLRAugmentation(size=4).output_size(8, 6)
            ((8, 6), (4, 4))
        """
        return (self.size, self.size) if self.size is not None else (height, width)
