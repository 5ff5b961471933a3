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

    def black(classes: np.ndarray, image_size: int, rng: np.random.Generator, *, palette: str) -> np.ndarray:
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


def test_pair_shares_exactly_the_listed_factors() -> None:
    plain = ColorfulMovingDigits(size=64, seed=2)
    ds = ColorfulMovingDigits(size=64, seed=2, pair=["digit", "position"])
    assert torch.equal(ds.images, plain.images), "adding a pair must not change the first images"
    assert ds[0]["image_pair"].shape == ds[0]["image"].shape and "image_pair" not in plain[0]
    # Same glyph at the same place, in another colour on another background: the digit's mask
    # (pixels that differ from the background) lies inside the same square in both images.
    assert not torch.equal(ds.image_pairs, ds.images)
    none = ColorfulMovingDigits(size=64, seed=2, pair=[])
    assert not torch.equal(none.image_pairs, ds.image_pairs)


def test_pair_with_all_factors_differs_only_in_texture_and_colour_draws() -> None:
    ds = ColorfulMovingDigits(size=32, seed=0, pair=["digit", "background", "position"], palette="class")
    # Same background class and palette: the mean colour of each pair is close (texture phase aside).
    diff = (ds.images.float().mean((2, 3)) - ds.image_pairs.float().mean((2, 3))).abs().mean()
    other = ColorfulMovingDigits(size=32, seed=0, pair=["digit", "position"])
    diff_other = (other.images.float().mean((2, 3)) - other.image_pairs.float().mean((2, 3))).abs().mean()
    assert diff < diff_other


def test_unknown_pair_factor_and_palette_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="pair: unknown factor 'colour'"):
        ColorfulMovingDigits(size=4, pair=["colour"])
    with pytest.raises(InvalidParameter, match="palette: must be 'class' or 'random'"):
        ColorfulMovingDigits(size=4, palette="rainbow")  # type: ignore[arg-type]


def test_random_palette_keeps_labels_and_changes_colours() -> None:
    a = ColorfulMovingDigits(size=64, seed=1)
    b = ColorfulMovingDigits(size=64, seed=1, palette="random")
    assert torch.equal(a.background, b.background) and torch.equal(a.digit, b.digit)
    assert not torch.equal(a.images, b.images)
