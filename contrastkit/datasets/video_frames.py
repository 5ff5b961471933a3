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
  ``(dx, dy)`` per pixel. See :func:`~contrastkit.datasets.flow_files.read_flo`.
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
    >>> from contrastkit.datasets.flow_files import write_flo
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

from contrastkit.datasets.flow_files import FLOW_EXTENSIONS, fit_flow, flow_size, read_flow
from contrastkit.datasets.folder_dataset import FolderDataset
from contrastkit.datasets.images import (
    IMAGE_EXTENSIONS,
    bad_file,
    check_index,
    existing_folder,
    list_images,
    load_image,
    natural_key,
    summarize,
)
from contrastkit.errors import InvalidParameter

__all__ = ["VideoFramesDataset"]


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


class VideoFramesDataset(FolderDataset):
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
        self._keep_image_parameters(split=split, image_size=image_size, extensions=extensions)
        self.offset = offset
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

    def _image_files(self) -> tuple[str, ...]:
        return self.frames

    def _verify_other_files(self, *, decode: bool) -> None:
        """The flow files (with ``flow_root``): their header (or all values), and that each has its frame's size."""
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
            >>> root = Path(VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))["root"])
            >>> {clip.name: len(list(clip.iterdir())) for clip in sorted(root.iterdir())}
            {'clip_a': 3, 'clip_b': 4}
        """
        from PIL import Image

        root = Path(tmp_dir) / "video-frames"
        for clip, length in (("clip_a", 3), ("clip_b", 4)):
            (root / clip).mkdir(parents=True, exist_ok=True)
            for t in range(1, length + 1):
                Image.new("RGB", (24, 20), (10 * t, 0, 0)).save(root / clip / f"frame_{t}.png")
        return {"root": os.fspath(root), "image_size": 16}
