"""The sync-free batched augmentation steps against torchvision's per-image functions and exact references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from contrastkit.augmentations.basic import CropFlip
from contrastkit.augmentations.batched import (
    apply_blur,
    apply_crop_flip,
    apply_jitter,
    color_jitter,
    crop_flip_theta,
    draw_crop_boxes,
    draw_jitter,
    gaussian_blur,
    grayscale,
    keep,
    resized_crop,
    to_device,
)
from contrastkit.augmentations.infomin import InfoMinAugmentation
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.errors import InvalidParameter


def test_crop_boxes_fit_and_follow_the_ranges() -> None:
    torch.manual_seed(0)
    boxes = draw_crop_boxes(2000, 96, 128, scale=(0.2, 0.9), ratio=(0.75, 4 / 3))
    x0, y0, w, h = boxes.unbind(1)
    assert bool((x0 >= 0).all() and (y0 >= 0).all() and (x0 + w <= 128).all() and (y0 + h <= 96).all())
    assert torch.equal(boxes, boxes.round())  # whole pixels, as torchvision
    area = w * h / (96 * 128)
    # rounding w and h to pixels moves the area and ratio a little past the drawn ranges
    assert float(area.min()) > 0.2 - 0.02 and float(area.max()) < 0.9 + 0.02
    assert float((w / h).min()) > 0.75 - 0.03 and float((w / h).max()) < 4 / 3 + 0.03
    # offsets are spread over the whole free range, not pinned to a corner
    assert float((x0 / (128 - w + 1)).mean()) == pytest.approx(0.5, abs=0.05)


def test_crop_boxes_match_torchvisions_distribution() -> None:
    torch.manual_seed(1)
    ours = draw_crop_boxes(4000, 32, 32, scale=(0.08, 1.0), ratio=(0.75, 4 / 3))
    theirs = torch.tensor([T.RandomResizedCrop.get_params(torch.empty(1, 32, 32), [0.08, 1.0], [0.75, 4 / 3])
                           for _ in range(4000)], dtype=torch.float32)  # (top, left, h, w)
    our_area = (ours[:, 2] * ours[:, 3]).mean() / 1024
    their_area = (theirs[:, 2] * theirs[:, 3]).mean() / 1024
    assert float(our_area) == pytest.approx(float(their_area), abs=0.02)


def test_crop_boxes_fall_back_to_the_clamped_centre_crop() -> None:
    # area fraction 1 at aspect ratio 2 never fits a square image: torchvision's fallback takes the
    # whole width and the height that gives the closest allowed ratio, centred.
    boxes = draw_crop_boxes(3, 40, 40, scale=(1.0, 1.0), ratio=(2.0, 2.0))
    assert boxes.tolist() == [[0.0, 10.0, 40.0, 20.0]] * 3


def test_resized_crop_is_exact_at_one_to_one_and_averages_when_halving() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    right_half = crop_flip_theta(torch.tensor([[4.0, 0.0, 4.0, 8.0]] * 2, dtype=torch.float64), torch.zeros(2),
                                 height=8, width=8)
    torch.testing.assert_close(resized_crop(x, right_half, (8, 4)), x[..., 4:])
    flipped = crop_flip_theta(torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2, dtype=torch.float64), torch.ones(2),
                              height=8, width=8)
    torch.testing.assert_close(resized_crop(x, flipped, (8, 8)), x.flip(-1))
    whole = crop_flip_theta(torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2, dtype=torch.float64), torch.zeros(2),
                            height=8, width=8)
    # bilinear at half resolution samples between pixels: the mean of each 2 x 2 block
    torch.testing.assert_close(resized_crop(x, whole, (4, 4)), F.avg_pool2d(x, 2))


def test_each_sample_gets_its_own_box() -> None:
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    params = {"box": torch.tensor([[0.0, 0.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0]]), "flip": torch.tensor([0.0, 1.0])}
    out = apply_crop_flip(x, params, (4, 4))
    torch.testing.assert_close(out[0], x[0, :, :4, :4])
    torch.testing.assert_close(out[1], x[1, :, 4:, 4:].flip(-1))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_color_jitter_matches_torchvision_per_sample(order: tuple[int, ...]) -> None:
    torch.manual_seed(2)
    x = torch.rand(4, 3, 6, 6, dtype=torch.float64)
    b, c, s = (torch.tensor([0.3, 1.0, 1.6, 0.9], dtype=torch.float64) for _ in range(3))
    h = torch.tensor([-0.2, 0.0, 0.1, 0.45], dtype=torch.float64)
    out = color_jitter(x, brightness=b, contrast=c.flip(0), saturation=s.roll(1), hue=h, order=torch.tensor(order))
    def luma(img: torch.Tensor) -> torch.Tensor:  # ITU-R 601, Kornia's weights (torchvision's red is 0.2989)
        return 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]

    def blend(img: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
        return (factor * img + (1 - factor) * other).clamp(0, 1)

    # torchvision's formulas written out in float64; hue from torchvision itself (no luma in it)
    steps = {
        0: lambda img, i: (img * float(b[i])).clamp(0, 1),
        1: lambda img, i: blend(img, luma(img).mean(), float(c.flip(0)[i])),
        2: lambda img, i: blend(img, luma(img).expand_as(img), float(s.roll(1)[i])),
        3: lambda img, i: TF.adjust_hue(img, float(h[i])),
    }
    for i in range(4):
        expected = x[i]
        for step in order:
            expected = steps[step](expected, i)
        # 1e-5: Kornia's RGB <-> HSV conversion keeps an eps away from division by zero
        torch.testing.assert_close(out[i], expected.clamp(0, 1), atol=1e-5, rtol=0)


def test_gaussian_blur_uses_each_samples_sigma() -> None:
    x = torch.rand(3, 3, 12, 12, dtype=torch.float64)
    sigma = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
    out = gaussian_blur(x, sigma, 5)
    for i in range(3):
        expected = TF.gaussian_blur(x[i], [5, 5], [float(sigma[i])] * 2)  # reflect padding, normalised kernel
        torch.testing.assert_close(out[i], expected, atol=1e-10, rtol=0)


def test_keep_and_the_apply_helpers_leave_unchosen_samples_alone() -> None:
    x = torch.rand(4, 3, 8, 8)
    chosen = torch.tensor([True, False, True, False])
    torch.testing.assert_close(keep(chosen, grayscale(x), x)[1], x[1], rtol=0, atol=0)
    jitter = draw_jitter(4, (0.8, 0.8, 0.8, 0.2), 1.0) | {"jitter": chosen}
    out = apply_jitter(x, jitter, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3]) and not torch.equal(out[0], x[0])
    blurred = apply_blur(x, {"sigma": torch.full((4,), 1.5), "blur": ~chosen}, 3)
    assert torch.equal(blurred[0], x[0]) and not torch.equal(blurred[1], x[1])


def test_grayscale_is_itu_601_luma_on_every_channel() -> None:
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    out = grayscale(x)
    for channel in range(3):
        torch.testing.assert_close(out[:, channel], luma)


def test_to_device_on_the_cpu_returns_the_parameters_unchanged() -> None:
    params = {"flip": torch.tensor([True, False]), "box": torch.rand(2, 4)}
    assert to_device(params, torch.device("cpu")) is params


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_to_device_packs_and_restores_on_cuda() -> None:
    params = {"flip": torch.tensor([True, False, True]), "box": torch.rand(3, 4), "sigma": torch.rand(3)}
    out = to_device(params, torch.device("cuda"))
    assert out["flip"].dtype == torch.bool and out["flip"].device.type == "cuda"
    for name, value in params.items():
        assert torch.equal(out[name].cpu(), value)


@needs_cuda
@pytest.mark.parametrize("make", [
    lambda: SimCLRAugmentation(strength=1.0, blur_p=0.5),
    lambda: InfoMinAugmentation(strength=1.0, randaugment_ops=0),  # RandAugment still groups samples by op
    lambda: CropFlip(),
], ids=["simclr", "infomin-without-randaugment", "crop-flip"])
def test_recipes_never_wait_for_the_gpu(make) -> None:  # type: ignore[no-untyped-def]
    """No host-device sync inside the step: CUDA's sync debug mode turns any into an error."""
    aug = make()
    images = torch.rand(64, 3, 32, 32, device="cuda")
    aug(images)  # warm-up: first calls may allocate pinned memory
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = aug(images)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert out.shape == images.shape


@needs_cuda
def test_same_seed_same_augmentation_on_cpu_and_gpu() -> None:
    images = torch.rand(16, 3, 32, 32)
    aug = SimCLRAugmentation(strength=1.0, blur_p=0.5)
    torch.manual_seed(3)
    on_cpu = aug(images)
    torch.manual_seed(3)
    on_gpu = aug(images.cuda()).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-4, rtol=0)
    assert math.isfinite(float(on_gpu.sum()))


def test_gaussian_blur_rejects_an_even_kernel() -> None:
    with pytest.raises(InvalidParameter, match="kernel_size: must be an odd number of pixels"):
        gaussian_blur(torch.rand(1, 3, 8, 8), torch.ones(1), 4)


def test_gaussian_blur_matches_kornia_on_the_cpu() -> None:
    import kornia.filters

    x = torch.rand(4, 3, 20, 20, dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0], dtype=torch.float64)
    expected = kornia.filters.gaussian_blur2d(x, (7, 7), torch.stack([sigma, sigma], 1), border_type="reflect")
    torch.testing.assert_close(gaussian_blur(x, sigma, 7), expected, atol=1e-12, rtol=0)


def test_cpu_subset_path_equals_the_whole_batch_path() -> None:
    """On the CPU a step runs on the chosen rows only; the GPU's run-on-all-then-keep gives the same images."""
    torch.manual_seed(4)
    x = torch.rand(6, 3, 12, 12)
    jitter = draw_jitter(6, (0.8, 0.8, 0.8, 0.2), 0.5)
    order = torch.randperm(4)
    whole = color_jitter(x, brightness=jitter["brightness"], contrast=jitter["contrast"],
                         saturation=jitter["saturation"], hue=jitter["hue"], order=order)
    torch.testing.assert_close(apply_jitter(x, jitter, order), keep(jitter["jitter"], whole, x))
    blur = {"sigma": torch.rand(6) + 0.1, "blur": torch.tensor([True, False, True, True, False, False])}
    torch.testing.assert_close(apply_blur(x, blur, 5), keep(blur["blur"], gaussian_blur(x, blur["sigma"], 5), x))
    none = {"sigma": torch.ones(6), "blur": torch.zeros(6, dtype=torch.bool)}
    assert torch.equal(apply_blur(x, none, 5), x)


@pytest.mark.parametrize("recipe", [SimCLRAugmentation, InfoMinAugmentation])
def test_recipes_run_under_cpu_bf16_autocast_and_keep_the_input_dtype(recipe: type) -> None:
    """A bf16-autocast CPU run (precision = "bf16"): the blur's convolution returns bf16 for some rows."""
    torch.manual_seed(0)
    images = torch.rand(8, 3, 16, 16)
    augment = recipe(strength=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = augment(images)
    assert out.dtype == torch.float32 and out.shape == images.shape and torch.isfinite(out).all()
