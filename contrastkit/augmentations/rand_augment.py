"""RandAugment as InfoMin used it (timm's ``rand-n2-m10``), with ops drawn per sample, batch-wise on the device.

Each of ``num_ops`` layers picks, for every sample on its own, one op uniformly (with replacement
across layers) from the 15 below and applies it with probability ``p`` (timm's 0.5). ``magnitude``
is on timm's 0-10 scale, 10 being each op's largest setting:

=============== ==============================================================
op              at magnitude ``m`` (``f = m / 10``; ``±``: random sign per sample)
=============== ==============================================================
auto_contrast   stretch each channel to [0, 1]
equalize        histogram equalisation per channel
invert          ``1 - x``
rotate          ``± 30 f`` degrees about the centre
posterize       keep ``8 - int(4 f)`` bits
solarize        invert pixels ``>= 1 - f``
solarize_add    add ``110/255 f`` to pixels ``< 0.5``
color           saturation factor ``1 ± 0.9 f`` (blend with grayscale; RGB only)
contrast        factor ``1 ± 0.9 f`` (blend with the mean grey level)
brightness      factor ``1 ± 0.9 f`` (blend with black)
sharpness       factor ``1 ± 0.9 f`` (blend with a 3x3 smoothed image)
shear_x/y       shear factor ``± 0.3 f`` about the centre
translate_x/y   ``± 0.45 f`` of the width / height
=============== ==============================================================

Geometric ops fill uncovered pixels with grey (0.5) and move all channels; intensity ops touch
the first 3 channels only (all when there are fewer; ``color`` is left out then). InfoMin's code also
jitters the magnitude per op (``mstd0.5``); here the magnitude is fixed, as in the RandAugment paper.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> ra = RandAugment(num_ops=2, magnitude=10, p=1.0)
    >>> out = ra(torch.rand(6, 4, 16, 16))
    >>> out.shape, bool(((out >= 0) & (out <= 1)).all())
    (torch.Size([6, 4, 16, 16]), True)
"""

from __future__ import annotations

import math

import kornia.color
import kornia.enhance
import kornia.geometry.transform
import torch
from torch import Tensor, nn

from contrastkit.augmentations.channel_rule import has_rgb, photometric_channels
from contrastkit.errors import InvalidParameter

__all__ = [
    "GEOMETRIC_OPS", "MAX_MAGNITUDE", "OPS", "SIGNED_OPS", "RandAugment", "available_ops", "check_rand_augment",
    "op_magnitude",
]

MAX_MAGNITUDE = 10.0
OPS: tuple[str, ...] = (
    "auto_contrast",
    "equalize",
    "invert",
    "rotate",
    "posterize",
    "solarize",
    "solarize_add",
    "color",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
GEOMETRIC_OPS = frozenset({"rotate", "shear_x", "shear_y", "translate_x", "translate_y"})
SIGNED_OPS = GEOMETRIC_OPS | {"color", "contrast", "brightness", "sharpness"}
_COLOUR_OPS = frozenset({"color"})  # need RGB
# Value at magnitude 10 of the ops whose setting grows linearly with the magnitude.
_LINEAR = {
    "rotate": 30.0,
    "shear_x": 0.3,
    "shear_y": 0.3,
    "translate_x": 0.45,
    "translate_y": 0.45,
    "solarize_add": 110 / 255,
    "color": 0.9,
    "contrast": 0.9,
    "brightness": 0.9,
    "sharpness": 0.9,
}
_GREY = 0.5


def op_magnitude(op: str, magnitude: float) -> float:
    """The setting of ``op`` at ``magnitude`` (0-10), before its random sign (see the module table).

    Example:
        >>> op_magnitude("rotate", 10), op_magnitude("posterize", 10), op_magnitude("solarize", 2.5)
        (30.0, 4, 0.75)
    """
    fraction = magnitude / MAX_MAGNITUDE
    if op == "posterize":
        return 8 - int(4 * fraction)  # bits kept
    if op == "solarize":
        return 1.0 - fraction  # threshold
    return _LINEAR.get(op, 0.0) * fraction


def available_ops(channels: int) -> tuple[str, ...]:
    """The ops drawn for images with ``channels`` channels (``color`` needs RGB).

    Example:
        >>> len(available_ops(3)), len(available_ops(1))
        (15, 14)
    """
    return tuple(op for op in OPS if has_rgb(channels) or op not in _COLOUR_OPS)


def check_rand_augment(*, num_ops: int, magnitude: float, p: float) -> tuple[int, float, float]:
    """Validate RandAugment's ``(num_ops, magnitude, p)``; errors name the recipe keys ``randaugment_*``.

    Example:
        >>> check_rand_augment(num_ops=2, magnitude=10, p=0.5)
        (2, 10.0, 0.5)
        >>> check_rand_augment(num_ops=2, magnitude=11, p=0.5)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: randaugment_magnitude: must be in [0, 10] (timm's scale; 10 is the strongest) (got 11)
    """
    if num_ops < 0:
        raise InvalidParameter("randaugment_ops", "must be >= 0 (0 turns RandAugment off)", num_ops)
    if not (math.isfinite(magnitude) and 0 <= magnitude <= MAX_MAGNITUDE):
        raise InvalidParameter(
            "randaugment_magnitude", "must be in [0, 10] (timm's scale; 10 is the strongest)", magnitude
        )
    if not 0 <= p <= 1:
        raise InvalidParameter("randaugment_p", "must be a probability in [0, 1]", p)
    return num_ops, float(magnitude), float(p)


def _per_sample(value: Tensor) -> Tensor:
    return value.view(-1, 1, 1, 1)


def _affine(op: str, images: Tensor, value: Tensor) -> Tensor:
    """Rotate / shear / translate each image about its centre; uncovered pixels become grey."""
    n, _, h, w = images.shape
    a = torch.eye(2, dtype=images.dtype, device=images.device).repeat(n, 1, 1)
    shift = torch.zeros(n, 2, dtype=images.dtype, device=images.device)
    if op == "rotate":
        theta = torch.deg2rad(value)
        a = torch.stack([torch.cos(theta), -torch.sin(theta), torch.sin(theta), torch.cos(theta)], 1).view(n, 2, 2)
    elif op == "shear_x":
        a[:, 0, 1] = value
    elif op == "shear_y":
        a[:, 1, 0] = value
    elif op == "translate_x":
        shift[:, 0] = value * w
    else:
        shift[:, 1] = value * h
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=images.dtype, device=images.device)
    matrix = torch.cat([a, (centre - a @ centre + shift).unsqueeze(-1)], dim=2)
    # Zero padding around (x - grey) fills with grey, the usual RandAugment fill.
    warped = kornia.geometry.transform.warp_affine(images - _GREY, matrix, (h, w), align_corners=True)
    return warped + _GREY


def _blend(degenerate: Tensor, images: Tensor, factor: Tensor) -> Tensor:
    # PIL ImageEnhance: factor 0 gives the degenerate image, 1 the original, > 1 extrapolates.
    return degenerate + _per_sample(factor) * (images - degenerate)


def _intensity(op: str, x: Tensor, value: Tensor) -> Tensor:
    """Intensity op on ``x`` ``[n, c, H, W]`` in [0, 1] (``c`` is 3 for ``color``)."""
    if op == "auto_contrast":
        low = x.amin(dim=(2, 3), keepdim=True)
        high = x.amax(dim=(2, 3), keepdim=True)
        spread = high - low
        flat = spread <= 0
        return torch.where(flat, x, (x - low) / torch.where(flat, torch.ones_like(spread), spread))
    if op == "equalize":
        return kornia.enhance.equalize(x)
    if op == "invert":
        return 1.0 - x
    if op == "posterize":
        step = float(2 ** (8 - int(value[0])))  # same bits for every sample: the magnitude is fixed
        return torch.floor(torch.round(x * 255) / step) * step / 255
    if op == "solarize":
        return torch.where(x >= _per_sample(value), 1.0 - x, x)
    if op == "solarize_add":
        return torch.where(x < 0.5, x + _per_sample(value), x)
    if op == "color":
        return _blend(kornia.color.rgb_to_grayscale(x), x, 1.0 + value)
    if op == "contrast":
        grey = kornia.color.rgb_to_grayscale(x) if x.shape[1] == 3 else x
        return _blend(grey.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), x, 1.0 + value)
    if op == "brightness":
        return _blend(torch.zeros_like(x), x, 1.0 + value)
    return kornia.enhance.sharpness(x, 1.0 + value)


class RandAugment(nn.Module):
    """Per-sample RandAugment on a batch ``[B, C, H, W]`` in [0, 1], drawing from the global torch RNG.

    Example:
        >>> import torch
        >>> RandAugment(num_ops=2, magnitude=10)(torch.rand(3, 1, 8, 8)).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(self, *, num_ops: int = 2, magnitude: float = 10.0, p: float = 0.5) -> None:
        super().__init__()
        self.num_ops, self.magnitude, self.p = check_rand_augment(num_ops=num_ops, magnitude=magnitude, p=p)

    def forward(self, images: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``; ``num_ops`` ops drawn per sample."""
        batch, channels = images.shape[:2]
        ops = available_ops(channels)
        head = photometric_channels(channels)
        out = images
        for _ in range(self.num_ops):
            # Every draw is made for the whole batch on the CPU, so the RNG advances the same way
            # whatever the images' device and whichever ops end up chosen.
            choice = torch.randint(len(ops), (batch,))
            applied = torch.rand(batch) < self.p
            sign = torch.where(torch.rand(batch) < 0.5, -1.0, 1.0)
            for k, op in enumerate(ops):
                rows = torch.nonzero((choice == k) & applied).squeeze(1)
                if rows.numel() == 0:
                    continue
                setting = sign[rows] if op in SIGNED_OPS else torch.ones(rows.numel())
                value = (setting * op_magnitude(op, self.magnitude)).to(images.device, images.dtype)
                rows = rows.to(images.device)
                x = out.index_select(0, rows)
                if op in GEOMETRIC_OPS:
                    y = _affine(op, x, value)
                else:
                    y = torch.cat([_intensity(op, x[:, :head], value), x[:, head:]], dim=1)
                out = out.index_copy(0, rows, y.clamp(0.0, 1.0))
        return out
