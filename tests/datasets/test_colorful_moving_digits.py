"""The embedded dataset: deterministic, labelled, with the digit really at its labelled position."""

from __future__ import annotations

import pytest
import torch

from contrastkit.datasets.colorful_moving_digits import NUM_BACKGROUNDS, ColorfulMovingDigits
from contrastkit.errors import InvalidParameter


def test_deterministic_from_seed() -> None:
    a = ColorfulMovingDigits(split="train", size=64, seed=3)
    b = ColorfulMovingDigits(split="train", size=64, seed=3)
    c = ColorfulMovingDigits(split="train", size=64, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.digit, b.digit)
    assert not torch.equal(a.images, c.images)


def test_splits_differ() -> None:
    train = ColorfulMovingDigits(split="train", size=64)
    test = ColorfulMovingDigits(split="test", size=64)
    assert not torch.equal(train.images, test.images)


def test_labels_cover_their_ranges() -> None:
    ds = ColorfulMovingDigits(split="train", size=2000, image_size=32, digit_size=16)
    assert set(ds.digit.tolist()) == set(range(10))
    assert set(ds.background.tolist()) == set(range(NUM_BACKGROUNDS))
    assert float(ds.position.min()) >= 8 and float(ds.position.max()) <= 24


def test_digit_is_drawn_at_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """On black backgrounds, the only lit pixels are the digit's, and they lie in its labelled box."""
    import numpy as np

    from contrastkit.datasets import colorful_moving_digits as module

    def black(classes: np.ndarray, image_size: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((len(classes), 3, image_size, image_size), dtype=np.float32)

    monkeypatch.setattr(module, "render_backgrounds", black)
    ds = module.ColorfulMovingDigits(split="train", size=64, image_size=40, digit_size=16, seed=0)
    for i in range(len(ds)):
        item = ds[i]
        lit = item["image"].amax(dim=0) > 0
        ys, xs = torch.nonzero(lit, as_tuple=True)
        assert len(ys) > 10, "the digit is missing"
        cx, cy = item["position"].tolist()
        assert xs.min() >= cx - 8 and xs.max() < cx + 8
        assert ys.min() >= cy - 8 and ys.max() < cy + 8


def test_items_and_bounds() -> None:
    ds = ColorfulMovingDigits(split="test", size=10)
    item = ds[-1]
    assert int(item["index"]) == 9 and item["image"].dtype == torch.uint8
    with pytest.raises(IndexError, match="out of range"):
        ds[10]


@pytest.mark.parametrize(("kwargs", "param"), [({"size": 0}, "size"), ({"digit_size": 40}, "digit_size"), ({"split": "val"}, "split")])
def test_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        ColorfulMovingDigits(**kwargs)
