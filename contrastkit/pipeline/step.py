"""The pieces of one forward step: the batch on the device, the views checked, the pairs contrasted.

Example:
    >>> import torch
    >>> batch = prepare_batch({"image": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)}, torch.device("cpu"))
    >>> batch["image"].dtype, batch["index"].tolist(), view_pairs(3, "core")
    (torch.float32, [0, 1], [(0, 1), (0, 2)])
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import torch
from torch import Tensor

from contrastkit.datasets.encoded_images import decode_batch, is_encoded
from contrastkit.errors import ShapeError
from contrastkit.interfaces import Batch

__all__ = ["PipelineOutput", "check_views", "prepare_batch", "reverse_gradient", "view_pairs"]


def view_pairs(num_views: int, graph: Literal["core", "full"]) -> list[tuple[int, int]]:
    """The view pairs contrasted: CMC's core view (view 1 with each other) or full graph (all pairs).

    Example:
        >>> view_pairs(3, "core"), view_pairs(3, "full")
        ([(0, 1), (0, 2)], [(0, 1), (0, 2), (1, 2)])
    """
    if graph == "core":
        return [(0, j) for j in range(1, num_views)]
    return list(itertools.combinations(range(num_views), 2))


@attrs.frozen
class PipelineOutput:
    """What one call of :class:`~contrastkit.pipeline.Pipeline` returns.

    ``loss`` is the scalar to minimise; ``metrics`` maps names (``loss/v1-v2``,
    ``mi_lower_bound/v1-v2``, ...) to detached scalar tensors; ``views`` and ``embeddings`` are the
    step's intermediate tensors (for logging and probes).

    Example:
        >>> import torch
        >>> out = PipelineOutput(loss=torch.tensor(1.0), metrics={}, views=[], embeddings=[])
        >>> float(out.loss)
        1.0
    """

    loss: Tensor
    metrics: dict[str, Tensor]
    views: list[Tensor]
    embeddings: list[Tensor]


def prepare_batch(batch: Batch, device: torch.device) -> dict[str, Tensor]:
    """Move a batch to ``device``; uint8 images become float in [0, 1] there, and ``index`` is filled in.

    A batch of encoded JPEG files (``image-folder`` with ``decode = "device"``) is decoded on the
    device first (:func:`~contrastkit.datasets.encoded_images.decode_batch`).

    Example:
        >>> import torch
        >>> prepare_batch({"index": torch.arange(2)}, torch.device("cpu"))
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: batch: no 'image' entry (keys: ['index'])
    """
    if is_encoded(batch):
        batch = decode_batch(batch, device)
    moved = {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}
    image = moved.get("image")
    if image is None:
        raise ShapeError(f"batch: no 'image' entry (keys: {sorted(batch)})")
    if image.dtype == torch.uint8:
        moved["image"] = image.float().div_(255.0)
    for key, value in moved.items():  # image_views, image_pair, next_image: other images of the sample
        is_image = key.startswith("image") or key.endswith("_image")
        if key != "image" and is_image and isinstance(value, Tensor) and value.dtype == torch.uint8:
            moved[key] = value.float().div_(255.0)
    if "index" not in moved:
        moved["index"] = torch.arange(image.shape[0], device=device)
    return moved


def check_views(views: Sequence[Tensor], *, view_channels: tuple[int, ...], maker: str) -> None:
    """Exactly one view per declared channel count, each ``[B, C_i, H, W]``; ``maker`` names the view maker.

    Example:
        >>> import torch
        >>> check_views([torch.zeros(2, 1, 4, 4), torch.zeros(2, 3, 4, 4)], view_channels=(1, 2), maker="color-split")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: views.color-split: view 2 has shape (2, 3, 4, 4), expected [B, 2, H, W] as declared by view_channels
    """
    if len(views) != len(view_channels):
        raise ShapeError(f"views.{maker}: produced {len(views)} views, declared {len(view_channels)}")
    for i, (view, channels) in enumerate(zip(views, view_channels)):
        if view.ndim != 4 or view.shape[1] != channels:
            raise ShapeError(
                f"views.{maker}: view {i + 1} has shape {tuple(view.shape)}, "
                f"expected [B, {channels}, H, W] as declared by view_channels"
            )


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward: lets a view maker *maximise* the loss."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def reverse_gradient(views: Sequence[Tensor]) -> list[Tensor]:
    """The views unchanged, with their gradient negated on the way back (InfoMin's adversarial view maker).

    Example:
        >>> import torch
        >>> x = torch.ones(2, requires_grad=True)
        >>> reverse_gradient([x])[0].sum().backward()
        >>> x.grad.tolist()
        [-1.0, -1.0]
    """
    return [_ReverseGradient.apply(v) for v in views]
