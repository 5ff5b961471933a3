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

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = VideoFramesDataset(split="train", **params)
    >>> len(ds), ds.clips, sorted(ds[0])
    (5, ('clip_a', 'clip_b'), ['clip', 'image', 'index', 'next_image'])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets._images import (
    IMAGE_EXTENSIONS,
    check_index,
    check_size,
    existing_folder,
    list_images,
    load_image,
    natural_key,
    normalize_extensions,
    verify_image,
)
from contrastkit.errors import InvalidParameter

__all__ = ["VideoFramesDataset"]


class VideoFramesDataset(torch.utils.data.Dataset):
    """Frame pairs ``(t, t + offset)`` of the same clip as ``"image"`` / ``"next_image"``, labelled by clip.

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
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if offset < 1:
            raise InvalidParameter("offset", "must be >= 1 (frames between the two frames of a sample)", offset)
        if channels not in ("rgb", "gray"):
            raise InvalidParameter("channels", "must be 'rgb' or 'gray'", channels)
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

    def __len__(self) -> int:
        return len(self._first)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = check_index("video-frames", index, len(self))
        t = int(self._first[index])
        return {
            "image": load_image(self.frames[t], size=self.image_size, channels=self.channels),
            "next_image": load_image(self.frames[t + self.offset], size=self.image_size, channels=self.channels),
            "index": torch.tensor(index, dtype=torch.int64),
            "clip": self._clip[index],
        }

    def verify(self, *, decode: bool = False) -> None:
        """Open every file and raise the one-line error naming the first unreadable one.

        ``decode=False`` checks headers only (fast); ``decode=True`` decodes every image in full.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> VideoFramesDataset(**VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))).verify()
        """
        for path in self.frames:
            verify_image(path, decode=decode)

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
