"""Batched augmentation steps that never wait for the device: crop + flip, colour jitter, grayscale, blur.

Why not Kornia's ``RandomResizedCrop`` / ``ColorJitter`` / ``RandomGaussianBlur`` modules: to apply a
step with probability ``p`` they select the chosen samples by boolean indexing, and they skip a step
when no sample needs it; on a GPU each of those decisions copies a value back to the host and stalls
the stream, and their parameters are drawn on the CPU and copied over one tensor at a time, each
copy another wait. With them, ``examples/simclr.toml`` on an H200 spent 53% of every training step
outside the encoders (``benchmarks/training.py``). Here:

- every random parameter is drawn on the CPU from the global torch RNG (so a seed gives the same
  augmentations on CPU and GPU, and a resumed run that restores the RNG repeats them), and all of a
  batch's parameters go to the device in **one** non-blocking copy from pinned memory
  (:func:`to_device`);
- a step with probability ``p`` runs on the whole batch and :func:`keep` (``torch.where``) keeps the
  samples it does not apply to: no indexing by a mask, no data-dependent branch (on the CPU, where
  indexing costs no wait, :func:`apply_to_some` runs the step on the chosen samples only);
- the pixel work is Kornia's functional colour kernels (``adjust_*``, ``rgb_to_grayscale``), one
  ``grid_sample`` for crop, resize and flip, and a separable grouped convolution for the blur (one
  sigma per sample).

Example:
    >>> import torch
    >>> images = torch.rand(4, 3, 32, 32)
    >>> boxes = draw_crop_boxes(4, 32, 32, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
    >>> theta = crop_flip_theta(boxes, torch.zeros(4), height=32, width=32)
    >>> resized_crop(images, theta, (16, 16)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import kornia.color
import kornia.enhance
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.errors import InvalidParameter

__all__ = [
    "RecipeDraws",
    "apply_blur",
    "apply_crop_flip",
    "apply_jitter",
    "apply_to_some",
    "color_jitter",
    "crop_flip_theta",
    "draw_blur",
    "draw_crop_boxes",
    "draw_crop_flip",
    "draw_jitter",
    "draw_recipe",
    "draw_uniform",
    "gaussian_blur",
    "grayscale",
    "keep",
    "resized_crop",
    "to_device",
]

_CROP_TRIES = 10  # torchvision's RandomResizedCrop.get_params tries 10 boxes before its fallback


def draw_uniform(batch: int, low: float, high: float) -> Tensor:
    """``batch`` values uniform in ``[low, high)`` from the global torch RNG (CPU, float32).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> values = draw_uniform(1000, 0.5, 2.0)
        >>> bool((values >= 0.5).all() and (values < 2.0).all())
        True
    """
    return low + (high - low) * torch.rand(batch)


def draw_crop_boxes(
    batch: int, height: int, width: int, *, scale: tuple[float, float], ratio: tuple[float, float]
) -> Tensor:
    """Random resized crop boxes ``[B, 4]`` as ``(x0, y0, w, h)`` in whole pixels, torchvision's rule batched.

    Per sample: up to 10 tries of an area fraction uniform in ``scale`` and a log-uniform aspect
    ratio in ``ratio``, the first box that fits the image wins, at a uniform offset; if none fits, the
    centre crop of the whole image with its aspect ratio clamped into ``ratio``. All tries are drawn
    at once (no per-sample loop).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> boxes = draw_crop_boxes(64, 24, 32, scale=(0.2, 1.0), ratio=(0.75, 4 / 3))
        >>> x0, y0, w, h = boxes.unbind(1)
        >>> bool((x0 >= 0).all() and (x0 + w <= 32).all() and (y0 + h <= 24).all() and (w >= 1).all())
        True
    """
    area = float(height * width)
    fraction = draw_uniform(batch * _CROP_TRIES, scale[0], scale[1]).view(batch, _CROP_TRIES)
    log_ratio = draw_uniform(batch * _CROP_TRIES, math.log(ratio[0]), math.log(ratio[1])).view(batch, _CROP_TRIES)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * fraction * aspect))
    h = torch.round(torch.sqrt(area * fraction / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first box that fits (0 if none)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    # torchvision's fallback: the whole image, its aspect ratio clamped into [ratio[0], ratio[1]], centred.
    image_ratio = width / height
    if image_ratio < ratio[0]:
        fallback_w, fallback_h = float(width), float(round(width / ratio[0]))
    elif image_ratio > ratio[1]:
        fallback_w, fallback_h = float(round(height * ratio[1])), float(height)
    else:
        fallback_w, fallback_h = float(width), float(height)
    found = fits.any(dim=1)
    w = torch.where(found, w, torch.full_like(w, fallback_w))
    h = torch.where(found, h, torch.full_like(h, fallback_h))
    offsets = torch.rand(batch, 2)
    x0 = torch.where(found, torch.floor(offsets[:, 0] * (width - w + 1)), torch.floor((width - w) / 2))
    y0 = torch.where(found, torch.floor(offsets[:, 1] * (height - h + 1)), torch.floor((height - h) / 2))
    return torch.stack([x0, y0, w, h], dim=1)


def crop_flip_theta(boxes: Tensor, flip: Tensor, *, height: int, width: int) -> Tensor:
    """The ``[B, 2, 3]`` affine matrices (for ``affine_grid``) that crop ``boxes`` and mirror where ``flip`` is 1.

    ``boxes`` are ``(x0, y0, w, h)`` pixels of an image ``height`` x ``width``; ``flip`` is ``[B]`` of 0 / 1.

    Example:
        >>> crop_flip_theta(torch.tensor([[0.0, 0.0, 8.0, 8.0]]), torch.tensor([1.0]), height=8, width=8)
        tensor([[[-1.,  0.,  0.],
                 [ 0.,  1.,  0.]]])
    """
    x0, y0, w, h = boxes.unbind(1)
    sign = 1.0 - 2.0 * flip  # -1 mirrors the output horizontally
    theta = torch.zeros(boxes.shape[0], 2, 3, dtype=boxes.dtype, device=boxes.device)
    # Normalised coordinates with align_corners=False: pixel edge x sits at 2 x / width - 1.
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2.0 * x0 + w) / width - 1.0
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2.0 * y0 + h) / height - 1.0
    return theta


def resized_crop(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop, resize (bilinear) and flip every image by its own ``theta`` in one ``grid_sample``.

    Example:
        >>> images = torch.arange(16.0).view(1, 1, 4, 4)
        >>> full = crop_flip_theta(torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.zeros(1), height=4, width=4)
        >>> torch.equal(resized_crop(images, full, (4, 4)), images)
        True
    """
    grid = F.affine_grid(theta.to(images.dtype), [images.shape[0], images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def keep(apply: Tensor, changed: Tensor, original: Tensor) -> Tensor:
    """``changed`` where ``apply`` (``[B]`` bool) is true, else ``original``: a random step without indexing.

    Example:
        >>> keep(torch.tensor([True, False]), torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)).flatten()
        tensor([1., 0.])
    """
    return torch.where(apply.view(-1, *([1] * (changed.dim() - 1))), changed, original)


def color_jitter(
    rgb: Tensor, *, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor, order: Tensor
) -> Tensor:
    """torchvision's colour jitter on ``[B, 3, H, W]`` with one factor per sample, in ``order`` (a permutation of 0-3).

    ``brightness`` multiplies, ``contrast`` blends with the image's grey mean, ``saturation`` with its
    grey image (each clamped to [0, 1]), ``hue`` shifts the HSV hue by that many turns (-0.5 to 0.5).
    ``order`` indexes (brightness, contrast, saturation, hue) and is a CPU tensor (one order per batch).

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> ones, zeros = torch.ones(2), torch.zeros(2)
        >>> out = color_jitter(x, brightness=ones, contrast=ones, saturation=ones, hue=zeros,
        ...                    order=torch.tensor([3, 2, 1, 0]))
        >>> torch.allclose(out, x, atol=1e-5)
        True
    """
    for step in order.tolist():  # a CPU tensor of 4: no device read
        if step == 0:
            rgb = kornia.enhance.adjust_brightness_accumulative(rgb, brightness)
        elif step == 1:
            rgb = kornia.enhance.adjust_contrast_with_mean_subtraction(rgb, contrast)
        elif step == 2:
            rgb = kornia.enhance.adjust_saturation_with_gray_subtraction(rgb, saturation)
        else:
            rgb = kornia.enhance.adjust_hue(rgb, hue * (2.0 * math.pi))
    return rgb.clamp(0.0, 1.0)


def grayscale(rgb: Tensor) -> Tensor:
    """``[B, 3, H, W]`` -> its luma (ITU-R 601) repeated on the three channels.

    Example:
        >>> out = grayscale(torch.rand(2, 3, 4, 4))
        >>> torch.equal(out[:, 0], out[:, 2])
        True
    """
    return kornia.color.rgb_to_grayscale(rgb).expand_as(rgb)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Gaussian blur with an odd ``kernel_size`` and one ``sigma`` per sample (reflect border), separable.

    One grouped convolution per axis with a kernel per sample built on the device. Not Kornia's
    ``gaussian_blur2d``: it checks ``sigma > 0`` on the host, which reads a device tensor back
    every call (measured on an H200 with ``torch.cuda.set_sync_debug_mode``).

    Example:
        >>> x = torch.zeros(2, 1, 9, 9); x[:, :, 4, 4] = 1.0
        >>> out = gaussian_blur(x, torch.tensor([0.5, 2.0]), 5)
        >>> bool(out[1, 0, 4, 4] < out[0, 0, 4, 4])  # the wider sigma spreads the point further
        True
        >>> torch.allclose(out.sum((-2, -1)), torch.ones(2, 1))  # away from the border, mass is kept
        True
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InvalidParameter("kernel_size", "must be an odd number of pixels", kernel_size)
    batch, channels, height, width = images.shape
    half = kernel_size // 2
    offsets = torch.arange(kernel_size, device=images.device, dtype=images.dtype) - half
    weights = torch.exp(-offsets.square() / (2.0 * sigma.to(images.dtype).square().unsqueeze(1)))  # [B, k]
    weights = weights / weights.sum(dim=1, keepdim=True)
    weights = weights.unsqueeze(1).expand(batch, channels, kernel_size).reshape(batch * channels, 1, kernel_size)
    x = F.pad(images.reshape(1, batch * channels, height, width), (half, half, half, half), mode="reflect")
    x = F.conv2d(x, weights.unsqueeze(2), groups=batch * channels)  # along the width: [BC, 1, 1, k]
    x = F.conv2d(x, weights.unsqueeze(3), groups=batch * channels)  # along the height: [BC, 1, k, 1]
    return x.reshape(batch, channels, height, width)


def to_device(params: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Move a batch's CPU parameters (each ``[B]`` or ``[B, k]``) to ``device`` in one non-blocking copy.

    On the CPU they come back as they are. On a GPU they are packed into one pinned float32 buffer
    and copied without waiting for the device; booleans come back as booleans.

    Example:
        >>> out = to_device({"flip": torch.tensor([True, False]), "box": torch.ones(2, 4)}, torch.device("cpu"))
        >>> out["flip"].dtype, out["box"].shape
        (torch.bool, torch.Size([2, 4]))
    """
    if device.type == "cpu":
        return params
    names = list(params)
    flat = [params[name].reshape(params[name].shape[0], -1).to(torch.float32) for name in names]
    widths = [part.shape[1] for part in flat]
    packed = torch.cat(flat, dim=1)
    if device.type == "cuda":
        packed = packed.pin_memory()
    moved = packed.to(device, non_blocking=True).split(widths, dim=1)
    out = {}
    for name, part in zip(names, moved):
        original = params[name]
        part = part.reshape(original.shape)
        out[name] = part.bool() if original.dtype == torch.bool else part
    return out


# --------------------------------------------------------------------------------------------
# The recipes' steps: draw a step's parameters (CPU), then apply them (device), as pairs.
# --------------------------------------------------------------------------------------------


def draw_crop_flip(
    batch: int, height: int, width: int, *, scale: tuple[float, float], ratio: tuple[float, float], flip_p: float
) -> dict[str, Tensor]:
    """A random resized crop box and a flip decision per sample: ``{"box": [B, 4], "flip": [B]}``.

    Example:
        >>> params = draw_crop_flip(3, 8, 8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
        >>> params["box"].tolist()[0], params["flip"].tolist()
        ([0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 0.0])
    """
    box = draw_crop_boxes(batch, height, width, scale=scale, ratio=ratio)
    return {"box": box, "flip": (torch.rand(batch) < flip_p).to(torch.float32)}


def apply_crop_flip(images: Tensor, params: dict[str, Tensor], size: tuple[int, int]) -> Tensor:
    """Crop ``params["box"]``, mirror where ``params["flip"]``, resize to ``size``: one ``grid_sample``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> params = {"box": torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2), "flip": torch.tensor([0.0, 1.0])}
        >>> out = apply_crop_flip(x, params, (8, 8))
        >>> torch.allclose(out[0], x[0]), torch.allclose(out[1], x[1].flip(-1))
        (True, True)
    """
    theta = crop_flip_theta(params["box"], params["flip"], height=images.shape[-2], width=images.shape[-1])
    return resized_crop(images, theta, size)


def draw_jitter(batch: int, strengths: tuple[float, float, float, float], p: float) -> dict[str, Tensor]:
    """Per-sample jitter factors and whether to apply them: brightness / contrast / saturation uniform in
    ``[max(0, 1 - s), 1 + s]``, hue uniform in ``[-h, h]`` turns, ``jitter`` true with probability ``p``.

    Example:
        >>> sorted(draw_jitter(4, (0.4, 0.4, 0.4, 0.1), 0.8))
        ['brightness', 'contrast', 'hue', 'jitter', 'saturation']
    """
    b, c, s, h = strengths
    return {
        "brightness": draw_uniform(batch, max(0.0, 1.0 - b), 1.0 + b),
        "contrast": draw_uniform(batch, max(0.0, 1.0 - c), 1.0 + c),
        "saturation": draw_uniform(batch, max(0.0, 1.0 - s), 1.0 + s),
        "hue": draw_uniform(batch, -h, h),
        "jitter": torch.rand(batch) < p,
    }


def apply_to_some(apply: Tensor, step: Callable[[Tensor | slice], Tensor], images: Tensor) -> Tensor:
    """``step(rows)`` (the step applied to ``images[rows]``) where ``apply`` (``[B]`` bool), else ``images``.

    On a GPU the step runs on every sample and :func:`keep` picks (selecting rows would read
    ``apply`` back to the host); on the CPU, where that read costs nothing, it runs on the chosen rows only.

    Example:
        >>> x = torch.zeros(3, 1, 2, 2)
        >>> apply_to_some(torch.tensor([True, False, True]), lambda rows: x[rows] + 1, x)[:, 0, 0, 0]
        tensor([1., 0., 1.])
    """
    if images.device.type != "cpu":
        return keep(apply, step(slice(None)), images)
    rows = apply.nonzero().squeeze(1)
    out = images.clone()
    if rows.numel():
        out[rows] = step(rows).to(out.dtype)  # under CPU autocast a convolution step returns bf16
    return out


def apply_jitter(rgb: Tensor, params: dict[str, Tensor], order: Tensor) -> Tensor:
    """:func:`color_jitter` with ``params`` from :func:`draw_jitter`, kept only where ``params["jitter"]``.

    Example:
        >>> x = torch.rand(2, 3, 4, 4)
        >>> params = draw_jitter(2, (0.8, 0.8, 0.8, 0.2), 0.0)  # p = 0: nothing changes
        >>> torch.equal(apply_jitter(x, params, torch.randperm(4)), x)
        True
    """
    def step(rows: Tensor | slice) -> Tensor:
        return color_jitter(rgb[rows], brightness=params["brightness"][rows], contrast=params["contrast"][rows],
                            saturation=params["saturation"][rows], hue=params["hue"][rows], order=order)

    return apply_to_some(params["jitter"], step, rgb)


def draw_blur(batch: int, sigma: tuple[float, float], p: float) -> dict[str, Tensor]:
    """Per-sample blur sigma uniform in ``sigma`` and whether to blur (probability ``p``).

    Example:
        >>> params = draw_blur(5, (0.1, 2.0), 1.0)
        >>> bool(params["blur"].all()), params["sigma"].shape
        (True, torch.Size([5]))
    """
    return {"sigma": draw_uniform(batch, sigma[0], sigma[1]), "blur": torch.rand(batch) < p}


def apply_blur(images: Tensor, params: dict[str, Tensor], kernel_size: int) -> Tensor:
    """:func:`gaussian_blur` with ``params`` from :func:`draw_blur`, kept only where ``params["blur"]``.

    Example:
        >>> x = torch.rand(3, 3, 8, 8)
        >>> params = {"sigma": torch.ones(3), "blur": torch.tensor([False, True, False])}
        >>> out = apply_blur(x, params, 3)
        >>> torch.equal(out[0], x[0]), torch.equal(out[1], x[1])
        (True, False)
    """
    return apply_to_some(params["blur"], lambda rows: gaussian_blur(images[rows], params["sigma"][rows], kernel_size),
                         images)


@attrs.frozen
class RecipeDraws:
    """One batch's draws for a crop / flip / jitter / grayscale / blur recipe, already on the images' device.

    ``params`` holds what :func:`draw_crop_flip`, :func:`draw_jitter` and :func:`draw_blur` drew, plus
    ``"grayscale"`` (``[B]`` bool) when the recipe has one; ``order`` is the jitter order (a CPU
    permutation of 0-3), ``None`` when the recipe does not jitter.

    Example:
        >>> draws = draw_recipe(torch.rand(2, 3, 8, 8), crop_scale=(0.5, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.5,
        ...                     jitter=None, jitter_p=0.0, grayscale_p=0.2, blur_sigma=(0.1, 2.0), blur_p=0.0)
        >>> sorted(draws.params), draws.order is None
        (['box', 'flip', 'grayscale'], True)
    """

    params: dict[str, Tensor]
    order: Tensor | None


def draw_recipe(
    images: Tensor,
    *,
    crop_scale: tuple[float, float],
    crop_ratio: tuple[float, float],
    flip_p: float,
    jitter: tuple[float, float, float, float] | None,
    jitter_p: float,
    grayscale_p: float,
    blur_sigma: tuple[float, float],
    blur_p: float,
) -> RecipeDraws:
    """Every random parameter of a crop / flip / jitter / grayscale / blur recipe for ``images``, in one copy.

    Drawn on the CPU in a fixed order (crop, flip, jitter, grayscale, blur; a step with probability 0
    or ``jitter=None`` draws nothing), then moved with :func:`to_device`.

    Example:
        >>> draws = draw_recipe(torch.rand(4, 3, 16, 16), crop_scale=(0.2, 1.0), crop_ratio=(0.75, 4 / 3),
        ...                     flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8, grayscale_p=0.2,
        ...                     blur_sigma=(0.1, 2.0), blur_p=0.5)
        >>> draws.params["box"].shape, sorted(draws.order.tolist())
        (torch.Size([4, 4]), [0, 1, 2, 3])
    """
    batch, _, height, width = images.shape
    params = draw_crop_flip(batch, height, width, scale=crop_scale, ratio=crop_ratio, flip_p=flip_p)
    order = None
    if jitter is not None and jitter_p > 0:
        params |= draw_jitter(batch, jitter, jitter_p)
        order = torch.randperm(4)
    if grayscale_p > 0:
        params["grayscale"] = torch.rand(batch) < grayscale_p
    if blur_p > 0:
        params |= draw_blur(batch, blur_sigma, blur_p)
    return RecipeDraws(to_device(params, images.device), order)
