"""Decoding a batch of JPEG files on the training device instead of in DataLoader workers.

Real datasets arrive as JPEG files, and decoding them one by one in CPU workers is often what limits
a GPU run. With ``decode = "device"`` a dataset (``image-folder``) returns each file's bytes instead
of its pixels; the default collate keeps them as a list, and :meth:`Pipeline.prepare_batch
<contrastkit.pipeline.Pipeline.prepare_batch>` hands the batch to :func:`decode_batch`, which decodes
every file at once with ``torchvision.io.decode_jpeg(..., device=device)`` (nvJPEG on a CUDA device,
libjpeg-turbo on the CPU), then takes each image's centred square and resizes it to the dataset's
``image_size`` on that device: the same ``uint8 [B, C, S, S]`` the worker path gives, so cropping and
augmentation follow on the device as usual.

A sample's entries (all kept by the default collate; the sizes become ``int64 [B]`` CPU tensors):

- ``encoded``: the file's bytes (``bytes``);
- ``encoded_path``: its path, for the error naming a file that does not decode;
- ``encoded_size``, ``encoded_channels``: the target side ``S`` and channel count (3 or 1).

Example:
    >>> import io, torch
    >>> from PIL import Image
    >>> buffer = io.BytesIO(); Image.new("RGB", (20, 12), (200, 10, 10)).save(buffer, "JPEG")
    >>> item = {"encoded": buffer.getvalue(), "encoded_path": "red.jpg", "encoded_size": 8, "encoded_channels": 3}
    >>> batch = torch.utils.data.default_collate([item, item])
    >>> images = decode_batch(batch, torch.device("cpu"))["image"]
    >>> images.shape, images.dtype, int(images[0, 0].float().mean()) > 150
    (torch.Size([2, 3, 8, 8]), torch.uint8, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.errors import ContrastkitError

__all__ = ["ENCODED_KEYS", "JPEG_EXTENSIONS", "decode_batch", "encoded_item", "is_encoded", "square_resize"]

#: The batch entries of an encoded sample; :func:`decode_batch` replaces them with ``image``.
ENCODED_KEYS = ("encoded", "encoded_path", "encoded_size", "encoded_channels")
#: File extensions the device decoder reads (``torchvision.io.decode_jpeg``).
JPEG_EXTENSIONS = (".jpg", ".jpeg")


def encoded_item(path: str | os.PathLike[str], *, size: int, channels: int) -> dict[str, Any]:
    """One sample's encoded entries: the file's bytes, its path, and the size and channels to decode to.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "x.jpg"; _ = path.write_bytes(b"\\xff\\xd8 not really")
        >>> sorted(encoded_item(path, size=8, channels=3))
        ['encoded', 'encoded_channels', 'encoded_path', 'encoded_size']
    """
    with open(path, "rb") as file:
        data = file.read()
    return {"encoded": data, "encoded_path": os.fspath(path), "encoded_size": size, "encoded_channels": channels}


def is_encoded(batch: Mapping[str, Any]) -> bool:
    """Whether ``batch`` carries encoded files (``encoded``) rather than pixels.

    Example:
        >>> is_encoded({"encoded": [b""]}), is_encoded({"image": None})
        (True, False)
    """
    return "encoded" in batch


def square_resize(images: Tensor, size: int) -> Tensor:
    """The centred ``min(H, W)`` square of uint8 ``[B, C, H, W]`` resized to ``size`` (bilinear, antialiased).

    The same crop as the worker path's Pillow ``fit_square``; rounded back to uint8.

    Example:
        >>> import torch
        >>> square_resize(torch.full((1, 3, 10, 20), 7, dtype=torch.uint8), 5).unique().tolist()
        [7]
    """
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = images[..., top : top + side, left : left + side]
    if side == size:
        return square.contiguous()
    resized = F.interpolate(square.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def _decode(data: list[Tensor], paths: Sequence[str], mode: Any, device: torch.device) -> list[Tensor]:
    from torchvision.io import decode_jpeg

    try:
        return list(decode_jpeg(data, mode=mode, device=device))
    except RuntimeError:
        pass
    for tensor, path in zip(data, paths):  # only after a failure: find the file to name
        try:
            decode_jpeg(tensor, mode=mode)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ContrastkitError(f"{path}: cannot be decoded as JPEG ({reason}); replace or remove the file") from None
    raise ContrastkitError(f"{paths[0]} ... : the batch of {len(paths)} JPEG files failed to decode on {device}")


def decode_batch(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Decode a collated batch's ``encoded`` files on ``device``; returns the batch with ``image`` in their place.

    One ``decode_jpeg`` call for the whole batch; one resize per distinct image size (a folder of
    equally sized files: one). A file that does not decode raises one line naming it.

    Example:
        >>> import io, torch
        >>> from PIL import Image
        >>> files = []
        >>> for side in (16, 24):
        ...     buffer = io.BytesIO(); Image.new("RGB", (side, side), (0, 0, 255)).save(buffer, "JPEG")
        ...     files.append(buffer.getvalue())
        >>> batch = {"encoded": files, "encoded_path": ["a.jpg", "b.jpg"], "encoded_size": torch.tensor([8, 8]),
        ...          "encoded_channels": torch.tensor([1, 1]), "index": torch.tensor([0, 1])}
        >>> out = decode_batch(batch, torch.device("cpu"))
        >>> sorted(out), tuple(out["image"].shape)
        (['image', 'index'], (2, 1, 8, 8))
    """
    from torchvision.io import ImageReadMode

    files, paths = list(batch["encoded"]), list(batch["encoded_path"])
    size = int(torch.as_tensor(batch["encoded_size"]).reshape(-1)[0])  # CPU tensors from the collate: no sync
    channels = int(torch.as_tensor(batch["encoded_channels"]).reshape(-1)[0])
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    data = [torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in files]
    decoded = _decode(data, paths, mode, device)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(decoded):
        by_shape.setdefault(tuple(image.shape), []).append(i)
    if len(by_shape) == 1:
        images = square_resize(torch.stack(decoded), size)
    else:
        images = torch.empty((len(decoded), channels, size, size), dtype=torch.uint8, device=device)
        for members in by_shape.values():
            rows = torch.tensor(members, device=device)
            images[rows] = square_resize(torch.stack([decoded[i] for i in members]), size)
    out = {k: v for k, v in batch.items() if k not in ENCODED_KEYS}
    out["image"] = images
    return out
