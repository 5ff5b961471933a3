"""Image files for dataset authors (the file-backed datasets use it): list them, decode them to uint8, fail clearly.

Every image is decoded with Pillow and fitted to a fixed square: the centred square of side
``min(H, W)`` is resized to ``size x size`` in one step (the same as "resize the shorter side, then
centre-crop", without an intermediate image). JPEGs are decoded at a reduced DCT scale when the
image is much larger than ``size`` (``Image.draft``), which makes loading large photos far cheaper.

A file Pillow cannot read raises :func:`bad_file` 's error, whose one-line message starts with the
file's path.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "a.png")
    >>> [p.name for p in list_images(folder, normalize_extensions((".png",)))]
    ['a.png']
    >>> load_image(folder / "a.png", size=8, channels="rgb").shape
    torch.Size([3, 8, 8])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from contrastkit.errors import ConfigError, ContrastkitError, InvalidParameter

__all__ = [
    "IMAGE_EXTENSIONS",
    "bad_file",
    "check_index",
    "check_size",
    "class_folders",
    "existing_folder",
    "file_classes",
    "fit_square",
    "list_images",
    "load_depth",
    "load_image",
    "natural_key",
    "no_image_files",
    "normalize_extensions",
    "summarize",
    "verify_image",
]

#: File name endings treated as images by default (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# What Pillow raises on unreadable, truncated or hostile files.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def bad_file(path: str | os.PathLike[str], problem: str) -> ContrastkitError:
    """The error for a data file that cannot be used: ``"<path>: <problem>"``, one line.

    The path goes in the message, not in ``ConfigError.path``: that slot holds the recipe file.

    Example:
        >>> str(bad_file("data/x.jpg", "cannot decode image (truncated); remove or replace the file"))
        'data/x.jpg: cannot decode image (truncated); remove or replace the file'
    """
    # ConfigError until errors.py has a dedicated DatasetError; only this line needs to change.
    return ConfigError(f"{os.fspath(path)}: {problem}")


def _decode_failure(path: str | os.PathLike[str], exc: BaseException) -> ContrastkitError:
    reason = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever Pillow said
    return bad_file(path, f"cannot decode image ({reason}); remove or replace the file")


def class_folders(*folders: Path) -> tuple[str, ...]:
    """The sorted union of the non-hidden top-level subfolder names of ``folders``.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("b", "a", ".cache"):
        ...     (root / name).mkdir()
        >>> class_folders(root)
        ('a', 'b')
    """
    names = {
        entry.name
        for folder in folders
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    }
    return tuple(sorted(names))


def file_classes(folder: Path, files: Sequence[Path], classes: Iterable[str]) -> tuple[str, ...] | None:
    """Each file's class name (its top-level subfolder), or ``None`` if any file lies directly in ``folder``.

    Example:
        >>> file_classes(Path("r"), [Path("r/cat/1.png"), Path("r/dog/x/2.png")], ("cat", "dog"))
        ('cat', 'dog')
        >>> file_classes(Path("r"), [Path("r/1.png"), Path("r/dog/2.png")], ("dog",)) is None
        True
    """
    known = set(classes)
    names = []
    for path in files:
        parts = path.relative_to(folder).parts
        if len(parts) < 2 or parts[0] not in known:
            return None
        names.append(parts[0])
    return tuple(names)


def normalize_extensions(extensions: Sequence[str], parameter: str = "extensions") -> tuple[str, ...]:
    """Lower-case extensions with a leading dot; ``InvalidParameter`` when empty or blank.

    Example:
        >>> normalize_extensions(["PNG", ".jpg"])
        ('.png', '.jpg')
    """
    out = tuple("." + str(e).strip().lower().lstrip(".") for e in extensions)
    if not out or any(e == "." for e in out):
        raise InvalidParameter(parameter, "must list at least one file ending such as '.png'", list(extensions))
    return out


def no_image_files(parameter: str, extensions: Sequence[str], given: object) -> InvalidParameter:
    """The error for a folder ``parameter`` (the recipe's ``given``) that holds none of the ``extensions``.

    Example:
        >>> str(no_image_files("root", (".png", ".jpg", ".gif", ".bmp"), "data"))
        "root: no image files (.png, .jpg, .gif, ...) under this folder; add images or set extensions (got 'data')"
    """
    shown = ", ".join(extensions[:3])
    return InvalidParameter(parameter, f"no image files ({shown}, ...) under this folder; add images or set extensions", given)


def check_size(image_size: int, parameter: str = "image_size") -> int:
    """Validate the side of the output square.

    Example:
        >>> check_size(32)
        32
    """
    if image_size < 1:
        raise InvalidParameter(parameter, "must be >= 1 (the side of the square images, in pixels)", image_size)
    return image_size


def existing_folder(path: str, parameter: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` (``~`` expanded) if it is a folder, else ``InvalidParameter``.

    Example:
        >>> import tempfile
        >>> existing_folder(tempfile.gettempdir(), "root").is_dir()
        True
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InvalidParameter(parameter, "folder not found; check the path", path)
    if not folder.is_dir():
        raise InvalidParameter(parameter, "is a file, not a folder; check the path", path)
    return folder


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: ``frame2`` before ``frame10``.

    Example:
        >>> sorted(["f10.png", "f2.png", "f1.png"], key=natural_key)
        ['f1.png', 'f2.png', 'f10.png']
    """
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def list_images(folder: Path, extensions: Iterable[str], *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (hidden files and folders skipped), sorted by relative path.

    Example:
        >>> import tempfile
        >>> list_images(Path(tempfile.mkdtemp()), (".png",))
        []
    """
    wanted = tuple(extensions)
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(Path(dirpath, f) for f in filenames if not f.startswith(".") and f.lower().endswith(wanted))
    else:
        found = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(wanted)]
    return sorted(found, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def summarize(names: Sequence[str], limit: int = 3) -> str:
    """``"a, b, c and 4 more"``: the first few names of a list, for one-line messages.

    Example:
        >>> summarize(["a", "b", "c", "d", "e"])
        'a, b, c and 2 more'
    """
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head} and {len(names) - limit} more"


def check_index(name: str, index: int, length: int) -> int:
    """``index`` made non-negative, or ``IndexError`` naming the dataset.

    Example:
        >>> check_index("image-folder", -1, 5)
        4
    """
    if not -length <= index < length:
        raise IndexError(f"{name}: index {index} out of range for {length} samples")
    return index % length


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """The centred ``min(H, W)`` square of ``image`` resized to ``size x size`` (bilinear, antialiased).

    Example:
        >>> fit_square(Image.new("RGB", (40, 20)), 10).size
        (10, 10)
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    if side == size:
        return image.crop(box)
    return image.resize((size, size), Image.Resampling.BILINEAR, box=box)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit integer and float images as 8-bit grayscale (Pillow's own conversion clips, not scales)."""
    values = np.asarray(image, dtype=np.float32)
    if image.mode == "F":
        values = values * 255.0 if float(values.max(initial=0.0)) <= 1.0 else values
    else:
        values = values / 257.0  # 16-bit range 0..65535 onto 0..255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _open(path: str | os.PathLike[str], size: int, mode: str | None = None) -> Image.Image:
    image = Image.open(path)
    # JPEG only (a no-op otherwise): decode at the smallest DCT scale that keeps both sides >= size.
    image.draft(mode, (size, size))
    image.load()
    return image


def load_image(path: str | os.PathLike[str], *, size: int, channels: Literal["rgb", "gray"]) -> Tensor:
    """Decode ``path`` to uint8 ``[3 or 1, size, size]`` (centre square, resized); clear error if unreadable.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "x.png"
        >>> Image.new("RGB", (12, 16), (255, 0, 0)).save(path)
        >>> image = load_image(path, size=4, channels="gray")
        >>> image.shape, image.dtype
        (torch.Size([1, 4, 4]), torch.uint8)
    """
    try:
        with _open(path, size, None if channels == "rgb" else "L") as image:
            if image.mode.startswith("I") or image.mode == "F":
                image = _to_8bit(image)
            image = image.convert("RGB" if channels == "rgb" else "L")
            array = np.asarray(fit_square(image, size))
    except _DECODE_ERRORS as exc:
        raise _decode_failure(path, exc) from None
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def load_depth(path: str | os.PathLike[str], *, size: int, depth_scale: float | None) -> Tensor:
    """Decode a depth map to uint8 ``[1, size, size]``.

    ``depth_scale=None``: 8-bit files keep their values and 16/32-bit files are divided by their own
    maximum (so each image spans 0..255). A number: a raw value ``v`` becomes ``255 * v / depth_scale``,
    clipped to 0..255 (the same scale for every image).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "d.png"
        >>> Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(path)
        >>> int(load_depth(path, size=4, depth_scale=None).max()), int(load_depth(path, size=4, depth_scale=2000.0).max())
        (255, 128)
    """
    try:
        with _open(path, size) as image:
            wide = image.mode.startswith("I") or image.mode == "F"
            values = np.asarray(image if wide else image.convert("L"), dtype=np.float32)
    except _DECODE_ERRORS as exc:
        raise _decode_failure(path, exc) from None
    if depth_scale is not None:
        factor = 255.0 / depth_scale
    elif wide:
        peak = float(values.max(initial=0.0))
        factor = 255.0 / peak if peak > 0 else 0.0
    else:
        factor = 1.0
    # Resize the raw float values, then quantise once.
    fitted = np.asarray(fit_square(Image.fromarray(values), size), dtype=np.float32)
    return torch.from_numpy(np.clip(np.rint(fitted * factor), 0, 255).astype(np.uint8))[None]


def verify_image(path: str | os.PathLike[str], *, decode: bool = False) -> None:
    """Raise the clear decode error if ``path`` is not a readable image.

    ``decode=False`` only checks the header and structure (Pillow's ``verify``: cheap, but it misses
    some truncated files); ``decode=True`` decodes the pixels too.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "bad.png"
        >>> _ = path.write_bytes(b"not an image")
        >>> try:
        ...     verify_image(path)
        ... except ContrastkitError as exc:
        ...     print(str(exc).endswith("cannot decode image (cannot identify image file " + repr(str(path)) + "); remove or replace the file"))
        True
    """
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            else:
                image.verify()
    except _DECODE_ERRORS as exc:
        raise _decode_failure(path, exc) from None
