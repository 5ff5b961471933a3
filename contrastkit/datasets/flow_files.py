"""Optical-flow files: read and write Middlebury ``.flo`` and numpy ``.npy`` flow, and fit a flow like a frame.

A flow is float32 ``[2, H, W]`` in pixels, OpenCV's convention: channel 0 is dx (along the width,
+right), channel 1 is dy (along the height, +down).

- ``.flo``: Middlebury's format (Sintel, FlyingChairs, ...), little-endian: float32 ``202021.25``
  (the bytes ``PIEH``), int32 width, int32 height, then ``height * width * 2`` float32, row by row,
  ``(dx, dy)`` per pixel. See :func:`read_flo`.
- ``.npy``: a numpy array ``[2, H, W]`` or ``[H, W, 2]`` (channels ``(dx, dy)``), any real dtype.

Middlebury's "unknown" values (magnitude above ``1e9``) and non-finite values read as 0. A file that
cannot be used raises a one-line error naming it.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "f.flo"
    >>> write_flo(path, np.stack([np.full((3, 4), 2.0), np.full((3, 4), -1.0)]))
    >>> flow_size(path), read_flow(path)[:, 0, 0].tolist()
    ((4, 3), [2.0, -1.0])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from contrastkit.datasets.images import bad_file, fit_square
from contrastkit.errors import InvalidParameter

__all__ = ["FLOW_EXTENSIONS", "fit_flow", "flow_size", "read_flo", "read_flow", "write_flo"]

#: The flow file formats read, in the order looked for.
FLOW_EXTENSIONS: tuple[str, ...] = (".flo", ".npy")
#: The first 4 bytes of a Middlebury .flo file: the float32 202021.25, i.e. the ASCII bytes "PIEH".
FLO_MAGIC = np.float32(202021.25)
# Middlebury marks unknown flow with values above 1e9.
_UNKNOWN_FLOW = 1e9
_FLO_HEADER = 12  # bytes: magic, width, height


def write_flo(path: str | os.PathLike[str], flow: np.ndarray) -> None:
    """Write ``flow`` ``[2, H, W]`` (dx, dy) as a Middlebury ``.flo`` file (for tests and tools).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "f.flo"
        >>> write_flo(path, np.zeros((2, 3, 5)))
        >>> path.read_bytes()[:4], path.stat().st_size
        (b'PIEH', 132)
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise InvalidParameter("flow", "must be [2, H, W] (dx, dy)", tuple(flow.shape))
    height, width = flow.shape[1:]
    with open(path, "wb") as file:
        file.write(FLO_MAGIC.astype("<f4").tobytes())
        file.write(np.array([width, height], dtype="<i4").tobytes())
        file.write(np.ascontiguousarray(flow.transpose(1, 2, 0), dtype="<f4").tobytes())


def _flo_header(path: str | os.PathLike[str], head: bytes, total: int) -> tuple[int, int]:
    """(height, width) from a .flo file's first bytes, after checking the magic and the file's length."""
    if len(head) < _FLO_HEADER or np.frombuffer(head[:4], dtype="<f4")[0] != FLO_MAGIC:
        raise bad_file(path, "not a Middlebury .flo file (it must start with the bytes 'PIEH'); remove or replace the file")
    width, height = (int(v) for v in np.frombuffer(head[4:_FLO_HEADER], dtype="<i4"))
    if width < 1 or height < 1:
        raise bad_file(path, f"bad .flo header: size {width}x{height}; remove or replace the file")
    expected = _FLO_HEADER + 8 * width * height
    if total != expected:
        raise bad_file(path, f"truncated or padded .flo file: {total} bytes, {width}x{height} needs {expected}; "
                             "remove or replace the file")
    return height, width


def read_flo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a Middlebury ``.flo`` file -> float32 ``[2, H, W]`` (dx, dy); one-line error if malformed.

    Layout (little-endian): float32 ``202021.25`` (``PIEH``), int32 width, int32 height, then
    ``H * W`` pairs ``(dx, dy)`` of float32, row-major.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "f.flo"
        >>> write_flo(path, np.arange(12, dtype=np.float32).reshape(2, 2, 3))
        >>> read_flo(path)[1].tolist()
        [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise bad_file(path, f"cannot read flow file ({exc.strerror or exc}); check the file") from None
    height, width = _flo_header(path, data[:_FLO_HEADER], len(data))
    values = np.frombuffer(data, dtype="<f4", offset=_FLO_HEADER).reshape(height, width, 2)
    return values.transpose(2, 0, 1).astype(np.float32)


def _npy_layout(path: str | os.PathLike[str], shape: tuple[int, ...]) -> bool:
    """True for ``[2, H, W]``, False for ``[H, W, 2]``; the one-line error for any other shape."""
    if len(shape) == 3 and shape[0] == 2:
        return True
    if len(shape) == 3 and shape[2] == 2:
        return False
    raise bad_file(path, f"flow array has shape {list(shape)}; save it as [2, H, W] or [H, W, 2] (dx, dy)")


def _open_npy(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise bad_file(path, f"cannot read .npy flow ({reason}); remove or replace the file") from None


def read_flow(path: str | os.PathLike[str]) -> np.ndarray:
    """A flow file (``.flo`` or ``.npy``) -> float32 ``[2, H, W]`` (dx, dy), unknown and non-finite values as 0.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "f.npy"
        >>> np.save(path, np.array([[[1.0, 2e10]], [[np.nan, -3.0]]]).transpose(1, 2, 0))  # saved as [H, W, 2]
        >>> read_flow(path).tolist()
        [[[1.0, 0.0]], [[0.0, -3.0]]]
    """
    if Path(path).suffix.lower() == ".flo":
        flow = read_flo(path)
    else:
        array = _open_npy(path)
        channels_first = _npy_layout(path, array.shape)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise bad_file(path, f"flow array has dtype {array.dtype}; save real numbers (float32)")
        flow = np.asarray(array if channels_first else array.transpose(2, 0, 1), dtype=np.float32)
    known = np.isfinite(flow) & (np.abs(flow) < _UNKNOWN_FLOW)
    return np.where(known, flow, np.float32(0))


def flow_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of a flow file from its header alone (checks a ``.flo`` file's magic and length).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "f.flo"
        >>> write_flo(path, np.zeros((2, 3, 5)))
        >>> flow_size(path)
        (5, 3)
    """
    if Path(path).suffix.lower() == ".flo":
        try:
            with open(path, "rb") as file:
                head = file.read(_FLO_HEADER)
            total = os.path.getsize(path)
        except OSError as exc:
            raise bad_file(path, f"cannot read flow file ({exc.strerror or exc}); check the file") from None
        height, width = _flo_header(path, head, total)
        return width, height
    shape = _open_npy(path).shape
    channels_first = _npy_layout(path, shape)
    height, width = shape[1:] if channels_first else shape[:2]
    return int(width), int(height)


def fit_flow(flow: np.ndarray, size: int) -> Tensor:
    """Flow ``[2, H, W]`` fitted like a frame: centred square resized to ``size`` -> float32 ``[2, size, size]``.

    Both channels are resampled exactly as the frames are (Pillow, bilinear, antialiased) and scaled
    by ``size / min(H, W)``, the factor by which distances in pixels shrink or grow.

    Example:
        >>> flow = np.stack([np.full((6, 8), 3.0), np.full((6, 8), -1.5)])
        >>> fit_flow(flow, 3)[:, 1, 1].tolist()  # the 6x6 centre resized to 3x3: distances halve
        [1.5, -0.75]
    """
    side = min(flow.shape[1:])
    channels = [np.asarray(fit_square(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32)), size)) for c in flow]
    return torch.from_numpy(np.stack(channels) * np.float32(size / side))
