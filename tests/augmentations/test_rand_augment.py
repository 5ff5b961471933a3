"""RandAugment: per-sample ops, channel rule, magnitudes, and parity of the device and worker versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.augmentations import rand_augment as R
from contrastkit.augmentations import rand_augment_albumentations as N


def test_magnitudes_at_ten_follow_timm() -> None:
    assert R.op_magnitude("rotate", 10) == 30.0
    assert R.op_magnitude("shear_x", 10) == pytest.approx(0.3)
    assert R.op_magnitude("translate_y", 10) == pytest.approx(0.45)
    assert R.op_magnitude("posterize", 10) == 4 and R.op_magnitude("posterize", 0) == 8
    assert R.op_magnitude("solarize", 10) == 0.0 and R.op_magnitude("solarize", 0) == 1.0
    assert R.op_magnitude("brightness", 5) == pytest.approx(0.45)
    assert R.op_magnitude("solarize_add", 10) == pytest.approx(110 / 255)


def test_off_when_p_or_ops_is_zero() -> None:
    images = torch.rand(4, 3, 16, 16)
    assert torch.equal(R.RandAugment(num_ops=2, p=0.0)(images), images)
    assert torch.equal(R.RandAugment(num_ops=0, p=1.0)(images), images)


def test_ops_are_drawn_per_sample() -> None:
    torch.manual_seed(0)
    images = torch.rand(1, 3, 32, 32).expand(16, -1, -1, -1).contiguous()
    out = R.RandAugment(num_ops=1, p=1.0)(images)
    distinct = {tuple(row.round(decimals=4).tolist()) for row in out.flatten(1)}
    assert len(distinct) >= 6, "one batch should see several different ops"


def test_extra_channels_follow_geometric_ops_only() -> None:
    torch.manual_seed(5)
    rgb = torch.rand(48, 3, 32, 32)
    images = torch.cat([rgb, rgb[:, :1]], dim=1)  # 4th channel = red
    torch.manual_seed(6)
    out = R.RandAugment(num_ops=1, p=1.0)(images)
    moved = kept = 0
    for before, after in zip(images, out):
        if torch.equal(after[3], before[3]) and not torch.equal(after[0], before[0]):
            kept += 1  # an intensity op: red changed, the extra channel did not
        else:
            assert torch.allclose(after[3], after[0], atol=1e-6), "a geometric op moved the extra channel differently"
            moved += 1
    assert moved > 0 and kept > 0
    torch.manual_seed(6)
    assert torch.allclose(R.RandAugment(num_ops=1, p=1.0)(rgb), out[:, :3]), "extra channels changed the RGB result"


def test_colour_op_left_out_without_rgb() -> None:
    assert "color" not in R.available_ops(1) and "color" not in R.available_ops(2)
    assert "color" in R.available_ops(4)
    torch.manual_seed(0)
    out = R.RandAugment(num_ops=2, p=1.0)(torch.rand(8, 2, 16, 16))
    assert out.shape == (8, 2, 16, 16) and float(out.min()) >= 0 and float(out.max()) <= 1


def _device_op(op: str, x: torch.Tensor, value: float) -> torch.Tensor:
    if op in R.GEOMETRIC_OPS:
        return R._affine(op, x, torch.tensor([value]))
    return R._intensity(op, x, torch.tensor([value])).clamp(0, 1)


@pytest.mark.parametrize("op", R.OPS)
def test_worker_ops_match_device_ops(op: str) -> None:
    rng = np.random.default_rng(0)
    image = (rng.integers(0, 256, (32, 32, 3)) * 0.5 + 60).astype(np.uint8)  # not full range: stretches show
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    value = R.op_magnitude(op, 7)
    transform = N._op(op, value)
    transform.set_random_seed(0)
    worker = transform(image=image)["image"].astype(np.float32) / 255
    assert np.abs(worker - image / 255).mean() > 0.005, f"{op} did nothing"
    signs = (1, -1) if op in R.SIGNED_OPS else (1,)
    # Albumentations' angles may turn the other way: compare with the closer sign.
    errors = [np.abs(worker - _device_op(op, x, s * value)[0].permute(1, 2, 0).numpy()).mean() for s in signs]
    assert min(errors) < 0.015, f"{op}: worker and device versions differ by {min(errors):.4f} on average"


def test_worker_equalize_matches_pil_rule_on_two_channels() -> None:
    image = np.stack([np.arange(1024).reshape(32, 32) // 16 + 100] * 2, axis=-1).astype(np.uint8)
    out = N._equalize(image)
    assert out.shape == image.shape and out.min() == 0 and out.max() >= 250
