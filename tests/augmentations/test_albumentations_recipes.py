"""``albumentations``: per-sample recipes in workers — seeding, shapes, channel rule, validation."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch

from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.factories import validate_params

RECIPES = ["simclr", "infomin"]


def _image(channels: int, size: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, channels)).astype(np.float32)
    return np.repeat(np.repeat(coarse, size // 6, axis=0), size // 6, axis=1).astype(np.uint8)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_shapes_and_dtype(recipe: str, channels: int) -> None:
    image = _image(channels)
    out = AlbumentationsAugmentation(recipe=recipe).augment_sample(image, seed=1)
    assert out.shape == image.shape and out.dtype == np.uint8
    out = AlbumentationsAugmentation(recipe=recipe, size=12).augment_sample(image, seed=1)
    assert out.shape == (12, 12, channels) and out.dtype == np.uint8


@pytest.mark.parametrize("recipe", RECIPES)
def test_deterministic_per_seed_and_different_across_seeds(recipe: str) -> None:
    image = _image(3)
    aug = AlbumentationsAugmentation(recipe=recipe)
    first = [aug.augment_sample(image, seed=s) for s in range(8)]
    again = AlbumentationsAugmentation(recipe=recipe)  # a fresh instance, as in another worker
    for s in reversed(range(8)):  # any order of calls
        assert np.array_equal(again.augment_sample(image, seed=s), first[s])
    assert len({o.tobytes() for o in first}) == 8


def test_global_rngs_do_not_matter() -> None:
    image = _image(3)
    aug = AlbumentationsAugmentation(recipe="infomin")
    np.random.seed(0)
    torch.manual_seed(0)
    first = aug.augment_sample(image, seed=3)
    np.random.seed(1)
    torch.manual_seed(1)
    assert np.array_equal(aug.augment_sample(image, seed=3), first)


def test_survives_pickling_for_spawned_workers() -> None:
    image = _image(4)
    aug = AlbumentationsAugmentation(recipe="infomin")
    expected = aug.augment_sample(image, seed=11)  # builds (and caches) the pipeline first
    clone = pickle.loads(pickle.dumps(aug))
    assert np.array_equal(clone.augment_sample(image, seed=11), expected)


def test_none_recipe_only_resizes() -> None:
    image = _image(3)
    assert np.array_equal(AlbumentationsAugmentation(recipe="none").augment_sample(image, seed=5), image)
    small = AlbumentationsAugmentation(recipe="none", size=12).augment_sample(image, seed=5)
    assert small.shape == (12, 12, 3)


def test_strength_zero_disables_colour_jitter() -> None:
    image = _image(3)
    still: dict[str, Any] = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "flip_p": 0.0, "grayscale_p": 0.0,
                             "blur_p": 0.0, "jitter_p": 1.0}
    assert np.array_equal(AlbumentationsAugmentation(strength=0.0, **still).augment_sample(image, seed=0), image)
    jittered = AlbumentationsAugmentation(strength=1.0, **still).augment_sample(image, seed=0)
    assert np.abs(jittered.astype(int) - image).mean() > 2


@pytest.mark.parametrize("recipe", RECIPES)
def test_grayscale_p_one_makes_rgb_equal(recipe: str) -> None:
    out = AlbumentationsAugmentation(recipe=recipe, grayscale_p=1.0).augment_sample(_image(3), seed=2)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("recipe", RECIPES)
def test_extra_channels_move_with_rgb_but_keep_their_values(recipe: str) -> None:
    rgb = _image(3, size=30)
    image = np.concatenate([rgb, rgb[..., :1]], axis=2)  # a 4th channel equal to red
    geometric = AlbumentationsAugmentation(recipe=recipe, strength=0.0, grayscale_p=0.0, blur_p=0.0, randaugment_ops=0)
    colourful = AlbumentationsAugmentation(recipe=recipe, jitter_p=1.0, grayscale_p=1.0, blur_p=1.0, randaugment_ops=0)
    for seed in range(4):
        moved = geometric.augment_sample(image, seed=seed)
        # Crop and flip draw first from the same stream, so both pipelines crop alike.
        recoloured = colourful.augment_sample(image, seed=seed)
        assert np.abs(moved[..., 3].astype(int) - moved[..., 0]).max() <= 1, "the extra channel was not cropped alike"
        assert np.array_equal(recoloured[..., 3], moved[..., 3]), "colour ops touched the extra channel"
        assert not np.array_equal(recoloured[..., :3], moved[..., :3])


@pytest.mark.parametrize("channels", [1, 2])
def test_one_or_two_channels_skip_colour_ops(channels: int) -> None:
    image = _image(channels)
    colour_only = AlbumentationsAugmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=1.0,
                                             grayscale_p=1.0, blur_p=0.0)
    assert np.array_equal(colour_only.augment_sample(image, seed=0), image)


def test_is_not_a_device_augmentation() -> None:
    aug = AlbumentationsAugmentation()
    assert AlbumentationsAugmentation.runs_in_workers is True
    with pytest.raises(ConfigError, match="DataLoader workers"):
        aug(torch.rand(2, 3, 8, 8))


def test_rejects_images_that_are_not_uint8_hwc() -> None:
    aug = AlbumentationsAugmentation()
    with pytest.raises(ShapeError):
        aug.augment_sample(np.zeros((8, 8, 3), np.float32), seed=0)
    with pytest.raises(ShapeError):
        aug.augment_sample(np.zeros((8, 8), np.uint8), seed=0)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("recipe", "byol"),
        ("strength", -1.0),
        ("crop_scale", (0.9, 0.1)),
        ("blur_p", 2.0),
        ("randaugment_ops", -1),
        ("randaugment_magnitude", 12.0),
        ("size", 0),
    ],
)
def test_invalid_parameters(param: str, value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        AlbumentationsAugmentation(**{param: value})
    assert info.value.parameter == param


def test_recipe_defaults_and_toml_values() -> None:
    assert AlbumentationsAugmentation(recipe="infomin").crop_scale == (0.2, 1.0)
    assert AlbumentationsAugmentation(recipe="simclr").crop_scale == (0.08, 1.0)
    with pytest.raises(InvalidParameter, match="1.25"):
        AlbumentationsAugmentation(recipe="infomin", strength=2.0)
    params = {"recipe": "infomin", "crop_scale": [0.3, 1], "size": 16, "randaugment_magnitude": 9}
    kwargs = validate_params(AlbumentationsAugmentation, params, kind="augmentations", name="albumentations",
                             table="augment", injected={})
    aug = AlbumentationsAugmentation(**kwargs)
    assert aug.recipe == "infomin" and aug.crop_scale == (0.3, 1.0) and aug.randaugment_magnitude == 9.0
    with pytest.raises(ConfigError):
        validate_params(AlbumentationsAugmentation, {"recipe": "byol"}, kind="augmentations", name="albumentations",
                        table="augment", injected={})
