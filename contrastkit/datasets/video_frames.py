"""``video-frames``: pairs of frames ``offset`` apart from clips stored as folders of frame images.

Layout: ``root/<clip>/<frame image>``, one subfolder per clip; frames are ordered by file name with
digit runs compared as numbers (``f2.png`` before ``f10.png``; zero-padded names sort the same
either way). Every pair ``(t, t + offset)`` with ``t + offset < len(clip)`` is one sample, clip by clip
in sorted clip order, ``t`` ascending. ``offset`` is fixed (not drawn at random), so the dataset is
deterministic and a sample's two frames are always the same distance apart.

Each item holds:

- ``"image"``: frame ``t``, uint8 ``[C, S, S]`` (centre square resized to ``image_size``);
- ``"next_image"``: frame ``t + offset``, same shape — a temporal view maker pairs it with ``"image"``;
- ``"clip"``: the clip's index in the sorted list ``clips`` (int64), the label.

Splits: ``split="test"`` reads ``test_root``; without one it reads ``root`` again. The ``clip`` label
indexes each split's own clips, so it names the same clip in both splits only when they read the
same folder.

Precomputed optical flow (``flow_root``): a folder parallel to ``root``, ``flow_root/<clip>/<name>``
holding, for every frame ``t`` that starts a sample, the flow from frame ``t`` to frame ``t + offset``
in a file with the frame's name and the extension ``.flo`` or ``.npy`` (``frame_0001.png`` ->
``frame_0001.flo``, Sintel's layout). Items then also hold ``"flow"``, float32 ``[2, S, S]`` in
pixels of the resized frame, OpenCV's convention: channel 0 is dx (along the width, +right),
channel 1 is dy (along the height, +down), ``next_image[y + dy, x + dx] ~ image[y, x]``. The files
must hold the flow for the dataset's ``offset`` (datasets usually ship ``offset = 1``); this cannot
be checked.

- ``.flo``: Middlebury's format (Sintel, FlyingChairs, ...), little-endian: float32 ``202021.25``
  (the bytes ``PIEH``), int32 width, int32 height, then ``height * width * 2`` float32, row by row,
  ``(dx, dy)`` per pixel. See :func:`read_flo`.
- ``.npy``: a numpy array ``[2, H, W]`` or ``[H, W, 2]`` (channels ``(dx, dy)``), any real dtype.

A flow must have its frame's size. It gets the frames' geometry, the centred square resized to
``image_size``, and its values are multiplied by the resize factor ``image_size / min(H, W)`` (a
displacement in pixels shrinks with the image). Middlebury's "unknown" values (magnitude above
``1e9``) and non-finite values become 0. A frame without a flow file is an error at construction
that lists the first few and how many; flow files without a frame are ignored. With ``test_root``,
``test_flow_root`` holds the test split's flow (required exactly when ``flow_root`` is set).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = VideoFramesDataset(split="train", **params)
    >>> len(ds), ds.clips, sorted(ds[0])
    (5, ('clip_a', 'clip_b'), ['clip', 'image', 'index', 'next_image'])
    >>> flow_root = Path(tempfile.mkdtemp())
    >>> for clip in ds.clips:
    ...     (flow_root / clip).mkdir()
    ...     for t in range(1, 4):  # a constant flow of (4, -2) pixels on the 24x20 frames
    ...         write_flo(flow_root / clip / f"frame_{t}.flo", np.stack([np.full((20, 24), 4.0), np.full((20, 24), -2.0)]))
    >>> flow = VideoFramesDataset(flow_root=str(flow_root), **params)[0]["flow"]  # frames' 20x20 centre -> 16x16
    >>> flow.shape, flow[:, 0, 0].tolist()
    (torch.Size([2, 16, 16]), [3.200000047683716, -1.600000023841858])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from contrastkit.datasets._images import (
    IMAGE_EXTENSIONS,
    bad_file,
    check_index,
    check_size,
    existing_folder,
    fit_square,
    list_images,
    load_image,
    natural_key,
    normalize_extensions,
    summarize,
    verify_image,
)
from contrastkit.errors import InvalidParameter

__all__ = ["FLOW_EXTENSIONS", "VideoFramesDataset", "fit_flow", "flow_size", "read_flo", "read_flow", "write_flo"]

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


def _frame_size(path: str) -> tuple[int, int]:
    """A frame's (width, height) from its header (its decode errors are raised when the frame is loaded)."""
    with Image.open(path) as image:
        return image.size


def _flow_files(folder: Path, clip: str) -> dict[str, str]:
    """``{frame stem: flow file}`` in ``folder/clip``; two flow files for one frame is an error."""
    found: dict[str, str] = {}
    clip_folder = folder / clip
    if not clip_folder.is_dir():
        return found
    for entry in os.scandir(clip_folder):
        stem, ext = os.path.splitext(entry.name)
        if entry.name.startswith(".") or ext.lower() not in FLOW_EXTENSIONS or not entry.is_file():
            continue
        if stem in found:
            raise InvalidParameter(
                "flow_root", f"two flow files for frame {clip}/{stem} ({Path(found[stem]).name}, {entry.name}); keep one",
                os.fspath(folder),
            )
        found[stem] = entry.path
    return found


class VideoFramesDataset(torch.utils.data.Dataset):
    """Frame pairs ``(t, t + offset)`` of the same clip as ``"image"`` / ``"next_image"``, labelled by clip.

    With ``flow_root``, items also carry ``"flow"`` (float32 ``[2, S, S]``, see the module docstring).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> params = VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))
        >>> ds = VideoFramesDataset(offset=2, channels="gray", **params)
        >>> len(ds), ds[0]["next_image"].shape, int(ds[2]["clip"])
        (3, torch.Size([1, 16, 16]), 1)
    """

    label_keys = ("clip",)

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        root: str,
        offset: int = 1,
        image_size: int = 64,
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
        test_root: str | None = None,
        channels: Literal["rgb", "gray"] = "rgb",
        flow_root: str | None = None,
        test_flow_root: str | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if offset < 1:
            raise InvalidParameter("offset", "must be >= 1 (frames between the two frames of a sample)", offset)
        if channels not in ("rgb", "gray"):
            raise InvalidParameter("channels", "must be 'rgb' or 'gray'", channels)
        if test_root is None and test_flow_root is not None:
            raise InvalidParameter("test_flow_root", "needs test_root (the test split's frames)", test_flow_root)
        if test_root is not None and (flow_root is None) != (test_flow_root is None):
            raise InvalidParameter(
                "test_flow_root", "must be set exactly when flow_root is (the splits need the same keys)", test_flow_root
            )
        self.split = split
        self.offset = offset
        self.image_size = check_size(image_size)
        self.extensions = normalize_extensions(extensions)
        self.channels = channels
        train_folder = existing_folder(root, "root")
        use_test = split == "test" and test_root is not None
        parameter, given = ("test_root", test_root) if use_test else ("root", root)
        self.root = existing_folder(test_root, "test_root") if use_test and test_root is not None else train_folder

        clip_dirs = sorted(
            (e for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")), key=lambda e: natural_key(e.name)
        )
        clips: list[str] = []
        frames: list[str] = []
        first: list[np.ndarray] = []  # per clip: flat indices of the frames t that start a sample
        owner: list[np.ndarray] = []
        longest = 0
        for entry in clip_dirs:
            clip_frames = list_images(Path(entry.path), self.extensions, recursive=False)
            if not clip_frames:
                continue  # a folder without frames is not a clip
            c = len(clips)
            clips.append(entry.name)
            longest = max(longest, len(clip_frames))
            starts = np.arange(len(frames), len(frames) + len(clip_frames) - offset, dtype=np.int64)
            first.append(starts)
            owner.append(np.full(len(starts), c, dtype=np.int64))
            frames.extend(os.fspath(p) for p in clip_frames)
        if not clips:
            shown = ", ".join(self.extensions[:3])
            raise InvalidParameter(
                parameter,
                f"no clip folders with frame images ({shown}, ...) under this folder; put each clip's frames in its own subfolder",
                given,
            )
        self.clips: tuple[str, ...] = tuple(clips)
        self.frames: tuple[str, ...] = tuple(frames)
        self._first = np.concatenate(first)
        if len(self._first) == 0:
            raise InvalidParameter(
                "offset", f"no clip has more than {offset} frames (the longest has {longest}); lower offset or add frames", offset
            )
        self._clip = torch.from_numpy(np.concatenate(owner))
        self.flow_root: Path | None = None
        self.flows: tuple[str, ...] | None = None  # per sample: the flow file from frame t to t + offset
        self._checked_sizes: dict[str, tuple[int, int]] = {}  # frame path -> (width, height) its flow matched
        flow_folder = test_flow_root if use_test else flow_root
        if flow_folder is not None:
            self.flow_root = existing_folder(flow_folder, "test_flow_root" if use_test else "flow_root")
            self.flows = self._match_flows(self.flow_root, "test_flow_root" if use_test else "flow_root", flow_folder)

    def _match_flows(self, folder: Path, parameter: str, given: str) -> tuple[str, ...]:
        """Each sample's flow file under ``folder``: the one named after its frame t, in its clip's subfolder."""
        by_clip = {clip: _flow_files(folder, clip) for clip in self.clips}
        flows: list[str] = []
        missing: list[str] = []
        for t, clip in zip(self._first.tolist(), self._clip.tolist()):
            name = self.clips[clip]
            stem = Path(self.frames[t]).stem
            path = by_clip[name].get(stem)
            if path is None:
                missing.append(f"{name}/{stem}")
            else:
                flows.append(path)
        if missing:
            raise InvalidParameter(
                parameter,
                f"no flow file for {len(missing)} of {len(self)} frames ({summarize(missing)}); give each frame t that "
                f"starts a pair a file <clip>/<frame name>.flo or .npy with its flow to frame t + {self.offset}",
                given,
            )
        return tuple(flows)

    def __len__(self) -> int:
        return len(self._first)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = check_index("video-frames", index, len(self))
        t = int(self._first[index])
        item = {
            "image": load_image(self.frames[t], size=self.image_size, channels=self.channels),
            "next_image": load_image(self.frames[t + self.offset], size=self.image_size, channels=self.channels),
            "index": torch.tensor(index, dtype=torch.int64),
            "clip": self._clip[index],
        }
        if self.flows is not None:
            flow = read_flow(self.flows[index])
            if (flow.shape[2], flow.shape[1]) != self._checked_sizes.get(self.frames[t]):
                # Checked once per frame (then remembered): a second open of the frame per sample costs I/O.
                self._check_flow_size(self.flows[index], (flow.shape[2], flow.shape[1]), self.frames[t])
                self._checked_sizes[self.frames[t]] = (flow.shape[2], flow.shape[1])
            item["flow"] = fit_flow(flow, self.image_size)
        return item

    @staticmethod
    def _check_flow_size(flow_path: str, flow_wh: tuple[int, int], frame_path: str) -> None:
        frame_wh = _frame_size(frame_path)
        if flow_wh != frame_wh:
            raise bad_file(
                flow_path,
                f"flow is {flow_wh[0]}x{flow_wh[1]} but its frame {Path(frame_path).name} is {frame_wh[0]}x{frame_wh[1]}; "
                "the flow must have its frame's size",
            )

    def verify(self, *, decode: bool = False) -> None:
        """Open every file and raise the one-line error naming the first unreadable one.

        ``decode=False`` checks headers only (fast); ``decode=True`` decodes every image in full.
        Flow files (with ``flow_root``) are checked too: their header, and that each has its frame's size.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> VideoFramesDataset(**VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))).verify()
        """
        for path in self.frames:
            verify_image(path, decode=decode)
        if self.flows is not None:
            for t, flow_path in zip(self._first.tolist(), self.flows):
                if decode:
                    flow = read_flow(flow_path)
                    size = (flow.shape[2], flow.shape[1])
                else:
                    size = flow_size(flow_path)
                self._check_flow_size(flow_path, size, self.frames[t])

    def frame_paths(self, index: int) -> tuple[str, str]:
        """The two files behind sample ``index``: frame ``t`` and frame ``t + offset``.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> ds = VideoFramesDataset(**VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp())))
            >>> [Path(p).name for p in ds.frame_paths(0)]
            ['frame_1.png', 'frame_2.png']
        """
        t = int(self._first[check_index("video-frames", index, len(self))])
        return self.frames[t], self.frames[t + self.offset]

    @classmethod
    def contract_params_for(cls, tmp_dir: Path) -> dict[str, Any]:
        """Write two clips (3 and 4 frames, 20x24 PNGs) under ``tmp_dir``; return the params.

        Example:
            >>> import tempfile
            >>> sorted(VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp())))
            ['image_size', 'root']
        """
        from PIL import Image

        root = Path(tmp_dir) / "video-frames"
        for clip, length in (("clip_a", 3), ("clip_b", 4)):
            (root / clip).mkdir(parents=True, exist_ok=True)
            for t in range(1, length + 1):
                Image.new("RGB", (24, 20), (10 * t, 0, 0)).save(root / clip / f"frame_{t}.png")
        return {"root": os.fspath(root), "image_size": 16}
