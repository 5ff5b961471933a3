"""``simclr`` and ``infomin`` on the device: shapes, value range, per-sample randomness, channel rule, validation."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from contrastkit.augmentations.infomin import InfoMinAugmentation
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.errors import InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_augmentation

RECIPES = [SimCLRAugmentation, InfoMinAugmentation]
# Everything random but crop and flip switched off (InfoMin's RandAugment too).
NO_COLOUR: dict[str, Any] = {"strength": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}
IDENTITY_CROP: dict[str, Any] = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "flip_p": 0.0}


def _quiet(cls: type) -> dict[str, Any]:
    return {**NO_COLOUR, "randaugment_ops": 0} if cls is InfoMinAugmentation else dict(NO_COLOUR)


def _textured(batch: int, channels: int, size: int = 24) -> torch.Tensor:
    """Smooth but non-constant images, so crops, flips and colour changes all show."""
    torch.manual_seed(123)
    base = torch.rand(1, channels, 6, 6)
    image = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return image.expand(batch, -1, -1, -1).clone()


@pytest.mark.parametrize("cls", RECIPES)
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("batch", [1, 8])
def test_shape_dtype_and_range(cls: type, channels: int, batch: int) -> None:
    torch.manual_seed(0)
    images = torch.rand(batch, channels, 20, 20)
    out = cls()(images)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    resized = cls(size=12)(images)
    assert resized.shape == (batch, channels, 12, 12)
    assert float(resized.min()) >= 0.0 and float(resized.max()) <= 1.0


@pytest.mark.parametrize("cls", RECIPES)
def test_passes_the_augmentation_contract(cls: type) -> None:
    check_augmentation(cls())
    check_augmentation(cls(size=16), size=32)


@pytest.mark.parametrize("cls", RECIPES)
def test_every_sample_gets_its_own_parameters(cls: type) -> None:
    torch.manual_seed(1)
    out = cls()(_textured(8, 3))
    flat = out.flatten(1)
    distinct = {tuple(row.round(decimals=4).tolist()) for row in flat}
    assert len(distinct) == 8, "copies of one image in one batch got identical augmentations"


@pytest.mark.parametrize("cls", RECIPES)
def test_crops_differ_within_a_batch(cls: type) -> None:
    torch.manual_seed(2)
    out = cls(**_quiet(cls), flip_p=0.0)(_textured(8, 3))  # crops only
    distinct = {tuple(row.round(decimals=4).tolist()) for row in out.flatten(1)}
    assert len(distinct) == 8, "copies of one image in one batch got the same crop"


@pytest.mark.parametrize("cls", RECIPES)
def test_reproducible_under_manual_seed(cls: type) -> None:
    images = _textured(4, 3)
    aug = cls()
    torch.manual_seed(7)
    first = aug(images)
    torch.manual_seed(7)
    assert torch.equal(aug(images), first)
    torch.manual_seed(8)
    assert not torch.equal(aug(images), first)


@pytest.mark.parametrize("cls", RECIPES)
def test_strength_zero_disables_colour_jitter(cls: type) -> None:
    images = _textured(4, 3)
    quiet = {**_quiet(cls), **IDENTITY_CROP, "jitter_p": 1.0}
    torch.manual_seed(0)
    assert torch.allclose(cls(**quiet)(images), images, atol=1e-5)
    torch.manual_seed(0)
    jittered = cls(**{**quiet, "strength": 1.0})(images)
    change = (jittered - images).abs().amax(dim=(1, 2, 3))
    assert change.min() > 0.01, "strength 1 with jitter_p 1 left a sample unchanged"


@pytest.mark.parametrize("cls", RECIPES)
def test_grayscale_p_one_makes_rgb_equal(cls: type) -> None:
    torch.manual_seed(3)
    out = cls(grayscale_p=1.0)(_textured(4, 3))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_blur_smooths() -> None:
    images = torch.rand(4, 3, 32, 32)
    torch.manual_seed(0)
    out = SimCLRAugmentation(**{**NO_COLOUR, **IDENTITY_CROP, "blur_p": 1.0, "blur_sigma": (2.0, 2.0)})(images)

    def roughness(x: torch.Tensor) -> float:
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    assert roughness(out) < 0.5 * roughness(images)


@pytest.mark.parametrize("cls", RECIPES)
def test_extra_channels_move_with_rgb_but_keep_their_values(cls: type) -> None:
    rgb = _textured(6, 3)
    images = torch.cat([rgb, rgb[:, :1]], dim=1)  # a 4th channel equal to red
    geometric = cls(**_quiet(cls))
    no_rand_augment = {"randaugment_ops": 0} if cls is InfoMinAugmentation else {}
    colourful = cls(strength=1.0, jitter_p=1.0, grayscale_p=1.0, blur_p=1.0, **no_rand_augment)
    torch.manual_seed(4)
    moved = geometric(images)
    torch.manual_seed(4)  # crop and flip come first, so they draw the same parameters
    recoloured = colourful(images)
    assert torch.allclose(moved[:, 3], moved[:, 0], atol=1e-6), "the extra channel was not cropped like the image"
    assert torch.allclose(recoloured[:, 3], moved[:, 3], atol=1e-6), "colour ops touched the extra channel"
    assert not torch.allclose(recoloured[:, :3], moved[:, :3], atol=1e-3)


@pytest.mark.parametrize("cls", RECIPES)
@pytest.mark.parametrize("channels", [1, 2])
def test_one_or_two_channels_skip_colour_ops(cls: type, channels: int) -> None:
    images = _textured(4, channels)
    colour_only = {**IDENTITY_CROP, "strength": 1.0, "jitter_p": 1.0, "grayscale_p": 1.0, "blur_p": 0.0}
    if cls is InfoMinAugmentation:
        colour_only["randaugment_ops"] = 0
    torch.manual_seed(0)
    assert torch.allclose(cls(**colour_only)(images), images, atol=1e-5)


@pytest.mark.parametrize("cls", RECIPES)
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("strength", -0.1),
        ("strength", 3.0),  # hue jitter beyond 0.5
        ("crop_scale", (0.5, 0.2)),
        ("crop_scale", (0.0, 1.0)),
        ("crop_scale", (0.2, 1.5)),
        ("crop_ratio", (0.0, 1.0)),
        ("blur_sigma", (2.0, 0.1)),
        ("blur_p", 1.5),
        ("flip_p", -0.1),
        ("jitter_p", 2.0),
        ("grayscale_p", -1.0),
        ("size", 0),
    ],
)
def test_invalid_parameters(cls: type, param: str, value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        cls(**{param: value})
    assert info.value.parameter == param


@pytest.mark.parametrize(
    ("param", "value"), [("randaugment_ops", -1), ("randaugment_magnitude", 11.0), ("randaugment_p", 1.2)]
)
def test_invalid_rand_augment_parameters(param: str, value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        InfoMinAugmentation(**{param: value})
    assert info.value.parameter == param


def test_infomin_hue_limit_is_lower_than_simclrs() -> None:
    SimCLRAugmentation(strength=2.0)  # 0.2 * 2 <= 0.5
    with pytest.raises(InvalidParameter, match="1.25"):
        InfoMinAugmentation(strength=2.0)


@pytest.mark.parametrize("cls", RECIPES)
def test_recipe_values_structure_from_toml(cls: type) -> None:
    params = {"crop_scale": [0.3, 1], "size": 32, "strength": 1, "blur_p": 0}
    kwargs = validate_params(cls, params, kind="augmentations", name="x", table="augment", injected={})
    aug = cls(**kwargs)
    assert aug.crop_scale == (0.3, 1.0) and aug.size == 32 and aug.blur_p == 0.0
