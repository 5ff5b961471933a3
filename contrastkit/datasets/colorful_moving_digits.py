"""``colorful-moving-digits``: the embedded default dataset, after seed 000's colorful-moving-MNIST.

Each image is a handwritten digit (scikit-learn's bundled 8x8 digits, upscaled — nothing is
downloaded) in a random bright colour, placed at a random position on a background drawn from one
of 10 procedural texture classes (stripes, checks, rings, gradients, ... each with its own palette
and random phase, frequency and colour jitter). Three factors of variation, all labelled:

- ``digit``: digit class 0-9 (int64);
- ``background``: background class 0-9 (int64);
- ``position``: the digit's centre ``(x, y)`` in pixels (float32 ``[2]``).

The whole split is generated at construction, vectorised, deterministic from ``seed``. ``train``
and ``test`` use disjoint handwritten digits. Images are stored as uint8 ``[3, H, W]``; the
pipeline converts them to float on the device.

``pair = [...]`` builds seed 000's Table 1 experiment: every sample also carries ``image_pair``, a
second image that shares exactly the listed factors with ``image`` (the same handwritten digit,
the same background class — a new texture of it — and/or the same position) and draws the others
afresh; the digit's colour is always redrawn. The ``image-pair`` view maker contrasts the two, so
what the views share is chosen by the recipe. Labels stay those of ``image``.

Example:
    >>> ds = ColorfulMovingDigits(split="test", size=16, image_size=32, seed=1)
    >>> sample = ds[0]
    >>> sample["image"].shape, sample["image"].dtype, ds.label_keys
    (torch.Size([3, 32, 32]), torch.uint8, ('digit', 'background', 'position'))
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.errors import InvalidParameter

__all__ = ["NUM_BACKGROUNDS", "ColorfulMovingDigits", "render_backgrounds"]

NUM_BACKGROUNDS = 10
#: The factors a ``pair`` may share.
FACTORS = ("digit", "background", "position")
_TRAIN_DIGITS = 1400  # of sklearn's 1797 digits: the first 1400 for train, the rest for test

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
        if palette == "random":
            colours = random_colours[sel]
        else:
            colours = np.clip(_PALETTES[cls][None] + jitter[sel], 0, 1)  # [n, 2, 3]
        c0 = colours[:, 0, :, None, None]
        c1 = colours[:, 1, :, None, None]
        out[sel] = c0 * (1 - t) + c1 * t
    return out


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    if split == "train":
        return images[:_TRAIN_DIGITS], labels[:_TRAIN_DIGITS]
    return images[_TRAIN_DIGITS:], labels[_TRAIN_DIGITS:]


class ColorfulMovingDigits(torch.utils.data.Dataset):
    """Coloured handwritten digits on textured backgrounds, with digit/background/position labels.

    Example:
        >>> ds = ColorfulMovingDigits(split="train", size=100)
        >>> len(ds), int(ds[5]["index"]), ds[5]["position"].shape
        (100, 5, torch.Size([2]))
    """

    label_keys = ("digit", "background", "position")
    #: Small enough for the contract tests to build quickly.
    contract_params = {"size": 16}

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        size: int = 4096,
        image_size: int = 32,
        digit_size: int = 16,
        seed: int = 0,
        pair: list[str] | None = None,
        palette: Literal["class", "random"] = "class",
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if size < 1:
            raise InvalidParameter("size", "must be >= 1", size)
        if not 8 <= digit_size <= image_size:
            raise InvalidParameter("digit_size", f"must be between 8 and image_size ({image_size})", digit_size)
        if palette not in ("class", "random"):
            raise InvalidParameter("palette", "must be 'class' or 'random'", palette)
        self.palette = palette
        if pair is not None:
            pair = list(pair)
            for factor in pair:
                if factor not in FACTORS:
                    raise InvalidParameter(
                        "pair", f"unknown factor {factor!r}; choose from {', '.join(map(repr, FACTORS))}", pair
                    )
        self.split = split
        self.pair = tuple(pair) if pair is not None else None
        self.image_size = image_size
        self.digit_size = digit_size
        self.seed = seed
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        pool, pool_labels = _load_digits(split)

        which = rng.integers(0, len(pool), size=size)
        backgrounds = rng.integers(0, NUM_BACKGROUNDS, size=size)
        corner = rng.integers(0, image_size - digit_size + 1, size=(size, 2))  # (x, y) of the top-left
        hue = rng.uniform(0, 1, size=size)
        self.images = _render(pool, which, backgrounds, corner, hue, image_size, digit_size, rng, palette)
        self.digit = torch.from_numpy(pool_labels[which])
        self.background = torch.from_numpy(backgrounds.astype(np.int64))
        self.position = torch.from_numpy((corner + digit_size / 2).astype(np.float32))
        self.image_pairs: Tensor | None = None
        if self.pair is not None:
            # Drawn after the first images, so adding a pair leaves ``images`` unchanged.
            which2 = which if "digit" in self.pair else rng.integers(0, len(pool), size=size)
            backgrounds2 = backgrounds if "background" in self.pair else rng.integers(0, NUM_BACKGROUNDS, size=size)
            corner2 = corner if "position" in self.pair else rng.integers(0, image_size - digit_size + 1, size=(size, 2))
            hue2 = rng.uniform(0, 1, size=size)
            self.image_pairs = _render(pool, which2, backgrounds2, corner2, hue2, image_size, digit_size, rng, palette)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"colorful-moving-digits: index {index} out of range for {len(self)} samples")
        index = index % len(self)
        sample = {
            "image": self.images[index],
            "index": torch.tensor(index, dtype=torch.int64),
            "digit": self.digit[index],
            "background": self.background[index],
            "position": self.position[index],
        }
        if self.image_pairs is not None:
            sample["image_pair"] = self.image_pairs[index]
        return sample


def _render(pool: np.ndarray, which: np.ndarray, backgrounds: np.ndarray, corner: np.ndarray, hue: np.ndarray,
            image_size: int, digit_size: int, rng: np.random.Generator, palette: str) -> Tensor:
    """Paste glyphs ``pool[which]`` in bright ``hue`` at ``corner`` on new textures -> uint8 ``[N, 3, H, W]``."""
    size = len(which)
    canvas = render_backgrounds(backgrounds, image_size, rng, palette=palette)
    # Upscale every digit at once, then paste them with one advanced-indexing write.
    glyphs = torch.from_numpy(pool[which])[:, None]
    glyphs = F.interpolate(glyphs, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    alpha = np.zeros((size, image_size, image_size), dtype=np.float32)
    offs = np.arange(digit_size)
    rows = (corner[:, 1][:, None] + offs)[:, :, None]
    cols = (corner[:, 0][:, None] + offs)[:, None, :]
    alpha[np.arange(size)[:, None, None], rows, cols] = glyphs[:, 0].clamp(0, 1).numpy()
    colour = _bright_colours(hue)[:, :, None, None]
    image = canvas * (1 - alpha[:, None]) + colour * alpha[:, None]
    return torch.from_numpy(np.round(image * 255).astype(np.uint8))


def _bright_colours(hue: np.ndarray) -> np.ndarray:
    """Fully saturated, bright RGB colours ``[N, 3]`` for hues in [0, 1)."""
    k = (np.array([5.0, 3.0, 1.0])[None] + hue[:, None] * 6) % 6
    rgb = 1 - np.clip(np.minimum(k, 4 - k), 0, 1)
    return (0.35 + 0.65 * rgb).astype(np.float32)
