"""The backgrounds of ``colorful-moving-digits``: 10 procedural texture classes, each with its own palette.

Stripes (horizontal, vertical, diagonal), checks, rings, dots, gradients (horizontal, vertical),
soft blobs and crosshatch, each drawn with a random phase and frequency and (with the class palette)
two jittered colours; ``soften_backgrounds`` lowers their contrast around each image's mean colour.

Example:
    >>> canvas = render_backgrounds(np.arange(NUM_BACKGROUNDS), 8, np.random.default_rng(0))
    >>> canvas.shape, canvas.dtype, bool(((canvas >= 0) & (canvas <= 1)).all())
    ((10, 3, 8, 8), dtype('float32'), True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NUM_BACKGROUNDS", "render_backgrounds", "soften_backgrounds"]

#: The number of background (texture) classes, the labels 0-9 of ``background``.
NUM_BACKGROUNDS = 10

# Two colours per background class (RGB in [0, 1]).
_PALETTES = np.array(
    [
        [[0.85, 0.20, 0.20], [0.95, 0.75, 0.30]],
        [[0.15, 0.35, 0.80], [0.55, 0.85, 0.95]],
        [[0.10, 0.55, 0.25], [0.75, 0.90, 0.35]],
        [[0.45, 0.15, 0.55], [0.90, 0.55, 0.80]],
        [[0.90, 0.50, 0.10], [0.25, 0.15, 0.10]],
        [[0.20, 0.20, 0.25], [0.60, 0.65, 0.70]],
        [[0.05, 0.45, 0.50], [0.95, 0.90, 0.60]],
        [[0.70, 0.10, 0.35], [0.10, 0.10, 0.45]],
        [[0.50, 0.35, 0.15], [0.85, 0.70, 0.45]],
        [[0.30, 0.60, 0.15], [0.30, 0.10, 0.60]],
    ],
    dtype=np.float32,
)


def _pattern(cls: int, yy: np.ndarray, xx: np.ndarray, freq: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Pattern intensity in [0, 1], ``[n, H, W]``, for background class ``cls``."""
    f = freq[:, None, None]
    p = phase[:, None, None]
    if cls == 0:  # horizontal stripes
        t = np.sin(2 * math.pi * f * yy + p)
    elif cls == 1:  # vertical stripes
        t = np.sin(2 * math.pi * f * xx + p)
    elif cls == 2:  # diagonal stripes
        t = np.sin(2 * math.pi * f * (xx + yy) / math.sqrt(2) + p)
    elif cls == 3:  # checkerboard
        t = np.sign(np.sin(2 * math.pi * f * xx + p) * np.sin(2 * math.pi * f * yy + p))
    elif cls == 4:  # concentric rings around a jittered centre
        cy = 0.5 + 0.2 * np.sin(p)
        cx = 0.5 + 0.2 * np.cos(p)
        t = np.sin(2 * math.pi * f * np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2))
    elif cls == 5:  # dots
        t = np.sin(2 * math.pi * f * xx + p) * np.sin(2 * math.pi * f * yy + p)
        t = np.where(t > 0.5, 1.0, -1.0)
    elif cls == 6:  # horizontal gradient
        t = 2 * np.clip(xx + 0.3 * np.sin(p), 0, 1) - 1
    elif cls == 7:  # vertical gradient
        t = 2 * np.clip(yy + 0.3 * np.sin(p), 0, 1) - 1
    elif cls == 8:  # soft blobs
        t = np.sin(2 * math.pi * f * xx + p) + np.sin(2 * math.pi * 0.7 * f * yy - p)
        t = t / 2
    else:  # crosshatch
        t = np.maximum(np.sin(2 * math.pi * f * xx + p), np.sin(2 * math.pi * f * yy - p))
    return (np.asarray(t, dtype=np.float32) + 1) / 2


def render_backgrounds(classes: np.ndarray, image_size: int, rng: np.random.Generator, *,
                       palette: str = "class") -> np.ndarray:
    """Render one background per entry of ``classes`` -> float32 ``[N, 3, H, W]`` in [0, 1].

    ``palette="class"`` colours each class with its own two colours (jittered); ``"random"`` draws
    both colours per image, so only the texture tells the class. Vectorised per class (10 array
    passes, no per-sample loop).

    Example:
        >>> import numpy as np
        >>> render_backgrounds(np.array([0, 3, 9]), 16, np.random.default_rng(0)).shape
        (3, 3, 16, 16)
    """
    n = len(classes)
    coords = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    freq = rng.uniform(2.0, 4.0, size=n).astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi, size=n).astype(np.float32)
    jitter = rng.uniform(-0.08, 0.08, size=(n, 2, 3)).astype(np.float32)
    if palette == "random":
        random_colours = rng.uniform(0, 1, size=(n, 2, 3)).astype(np.float32)
    out = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    for cls in range(NUM_BACKGROUNDS):
        sel = np.flatnonzero(classes == cls)
        if sel.size == 0:
            continue
        t = _pattern(cls, yy, xx, freq[sel], phase[sel])[:, None]  # [n, 1, H, W]
        colours = random_colours[sel] if palette == "random" else np.clip(_PALETTES[cls][None] + jitter[sel], 0, 1)  # [n, 2, 3]
        c0 = colours[:, 0, :, None, None]
        c1 = colours[:, 1, :, None, None]
        out[sel] = c0 * (1 - t) + c1 * t
    return out


def soften_backgrounds(canvas: np.ndarray, contrast: float) -> np.ndarray:
    """Each background pulled towards its mean colour: ``mean + contrast * (canvas - mean)`` (1: unchanged).

    Example:
        >>> canvas = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 1, 2)
        >>> soften_backgrounds(canvas, 0.5).ravel().tolist()
        [0.25, 0.75]
    """
    if contrast == 1.0:
        return canvas
    mean = canvas.mean(axis=(1, 2, 3), keepdims=True)
    return (mean + np.float32(contrast) * (canvas - mean)).astype(np.float32)
