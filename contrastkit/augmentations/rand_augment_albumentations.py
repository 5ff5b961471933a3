"""RandAugment for one uint8 ``[H, W, C]`` sample, as an albumentations transform (the worker-side twin of
:mod:`contrastkit.augmentations.rand_augment`: same ops, same magnitudes, same channel rule).

``rand_augment(num_ops=2, magnitude=10, p=0.5, rgb=True)`` returns ``SomeOf`` over the 15 ops, each
picked with replacement and applied with probability ``p``; signed ops pick their sign with
``OneOf``. Intensity ops are plain numpy functions (PIL's formulas) wrapped in ``A.Lambda``, because
albumentations' own versions either reject 2-channel images or differ from PIL's (its ``Posterize``
refuses 8 bits, ``Sharpen`` is another filter). Geometric ops are ``A.Affine`` with a grey fill, so
they also move a ``mask`` (the extra channels) the same way. One difference from the device version:
``SomeOf`` applies the picked ops in list order rather than in the order drawn.

Example:
    >>> import numpy as np
    >>> ra = rand_augment(num_ops=2, magnitude=10, p=1.0, rgb=True)
    >>> ra.set_random_seed(0)
    >>> out = ra(image=np.full((8, 8, 3), 100, np.uint8))["image"]
    >>> out.shape, out.dtype
    ((8, 8, 3), dtype('uint8'))
"""

from __future__ import annotations

import math
import os
from functools import partial
from typing import Any

import cv2
import numpy as np

from contrastkit.augmentations.rand_augment import GEOMETRIC_OPS, SIGNED_OPS, available_ops, op_magnitude

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network on import
import albumentations as A

__all__ = ["rand_augment"]

_GREY = 128
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13  # PIL's SMOOTH filter


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _blend(degenerate: np.ndarray, image: np.ndarray, factor: float) -> np.ndarray:
    # PIL ImageEnhance: factor 0 gives the degenerate image, 1 the original, > 1 extrapolates.
    return _to_uint8(degenerate + factor * (image.astype(np.float32) - degenerate))


def _grey(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma ``[H, W, 1]`` (float) of an RGB image."""
    return (image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


# albumentations calls a Lambda's function with the transform's parameters; they are not needed.
def _auto_contrast(image: np.ndarray, **_params: Any) -> np.ndarray:
    low = image.min(axis=(0, 1), keepdims=True).astype(np.float32)
    high = image.max(axis=(0, 1), keepdims=True).astype(np.float32)
    spread = high - low
    stretched = (image - low) * 255 / np.where(spread > 0, spread, 1)
    return np.where(spread > 0, _to_uint8(stretched), image)


def _equalize(image: np.ndarray, **_params: Any) -> np.ndarray:
    out = image.copy()
    for c in range(image.shape[2]):
        hist = np.bincount(image[..., c].ravel(), minlength=256)
        used = hist[hist > 0]
        step = (used.sum() - used[-1]) // 255
        if step == 0:  # PIL leaves a channel with (almost) one level alone
            continue
        before = np.concatenate([[0], np.cumsum(hist)[:-1]])
        lut = np.minimum((before + step // 2) // step, 255).astype(np.uint8)
        out[..., c] = lut[image[..., c]]
    return out


def _invert(image: np.ndarray, **_params: Any) -> np.ndarray:
    return 255 - image


def _posterize(image: np.ndarray, *, bits: int, **_params: Any) -> np.ndarray:
    return image & np.uint8((0xFF << (8 - bits)) & 0xFF)


def _solarize(image: np.ndarray, *, threshold: float, **_params: Any) -> np.ndarray:
    return np.where(image.astype(np.float32) >= threshold * 255, 255 - image, image)


def _solarize_add(image: np.ndarray, *, addition: float, **_params: Any) -> np.ndarray:
    return np.where(image < 128, _to_uint8(image + addition * 255), image)


def _color(image: np.ndarray, *, factor: float, **_params: Any) -> np.ndarray:
    return _blend(_grey(image), image, factor)


def _contrast(image: np.ndarray, *, factor: float, **_params: Any) -> np.ndarray:
    grey = _grey(image) if image.shape[2] == 3 else image.astype(np.float32)
    return _blend(np.float32(grey.mean()), image, factor)


def _brightness(image: np.ndarray, *, factor: float, **_params: Any) -> np.ndarray:
    return _blend(np.float32(0.0), image, factor)


def _sharpness(image: np.ndarray, *, factor: float, **_params: Any) -> np.ndarray:
    smooth = cv2.filter2D(image.astype(np.float32), -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    smooth = np.round(smooth).reshape(image.shape)
    smooth[[0, -1], :] = image[[0, -1], :]  # PIL keeps the border pixels
    smooth[:, [0, -1]] = image[:, [0, -1]]
    return _blend(smooth, image, factor)


def _affine(op: str, value: float) -> A.BasicTransform:
    geometry: dict[str, Any]
    if op == "rotate":
        geometry = {"rotate": (value, value)}
    else:
        if op.startswith("shear"):
            value = math.degrees(math.atan(value))  # albumentations shears by an angle
        axes = {"x": (value, value), "y": (0.0, 0.0)} if op.endswith("_x") else {"x": (0.0, 0.0), "y": (value, value)}
        geometry = {"shear": axes} if op.startswith("shear") else {"translate_percent": axes}
    return A.Affine(
        scale=1.0,
        border_mode=cv2.BORDER_CONSTANT,
        fill=_GREY,
        fill_mask=_GREY,
        interpolation=cv2.INTER_LINEAR,
        p=1.0,
        **geometry,
    )


def _intensity(op: str, value: float) -> A.BasicTransform:
    fn = {
        "auto_contrast": _auto_contrast,
        "equalize": _equalize,
        "invert": _invert,
        "posterize": partial(_posterize, bits=int(value)),
        "solarize": partial(_solarize, threshold=value),
        "solarize_add": partial(_solarize_add, addition=value),
        "color": partial(_color, factor=1.0 + value),
        "contrast": partial(_contrast, factor=1.0 + value),
        "brightness": partial(_brightness, factor=1.0 + value),
        "sharpness": partial(_sharpness, factor=1.0 + value),
    }[op]
    return A.Lambda(image=fn, name=op, p=1.0)


def _op(op: str, value: float) -> A.BasicTransform:
    return _affine(op, value) if op in GEOMETRIC_OPS else _intensity(op, value)


def rand_augment(*, num_ops: int, magnitude: float, p: float, rgb: bool) -> A.BaseCompose:
    """``num_ops`` ops drawn with replacement from the 15 (14 without RGB), each applied with probability ``p``.

    Example:
        >>> ra = rand_augment(num_ops=2, magnitude=5, p=0.5, rgb=False)
        >>> len(ra.transforms), ra.n
        (14, 2)
    """
    ops: list[A.BasicTransform | A.BaseCompose] = []
    for op in available_ops(3 if rgb else 1):
        value = op_magnitude(op, magnitude)
        if op in SIGNED_OPS:
            ops.append(A.OneOf([_op(op, value), _op(op, -value)], p=p))
        else:
            ops.append(A.OneOf([_op(op, value)], p=p))
    return A.SomeOf(ops, n=num_ops, replace=True, p=1.0)
