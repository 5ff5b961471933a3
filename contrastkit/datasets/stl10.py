"""``stl10``: STL-10 read straight from its binary files, memory-mapped (nothing is loaded up front).

``root`` is the folder that contains ``stl10_binary/`` (the extracted ``stl10_binary.tar.gz``).
Each ``*_X.bin`` holds 96x96 RGB images, 27 648 bytes each, every channel stored column by column;
each ``*_y.bin`` one byte per image, classes 1-10. Items are uint8 ``[3, 96, 96]``.

Which images (``subset`` picks the training images; ``split="test"`` always reads ``test``, whatever
``subset`` says):

| subset | images | ``class`` label |
| --- | --- | --- |
| ``unlabeled`` (default) | the 100 000 unlabelled images, the usual pre-training set | none (``label_keys == ()``) |
| ``train`` | the 5 000 labelled training images | 0-9 |
| ``train+unlabeled`` | both, labelled ones first | 0-9, and -1 for unlabelled images |
| ``test`` | the 8 000 test images | 0-9 |

The files are opened with ``numpy.memmap`` on first access in each process (DataLoader workers
included; a pickled dataset carries only the paths), so construction is instant and memory stays
flat. Nothing is downloaded unless ``download = true``: then torchvision's md5-checked downloader
fetches the 2.6 GB archive into ``root`` (only when files are missing).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = STL10Dataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = STL10Dataset(split="train", subset="train+unlabeled", **params)
    >>> len(ds), ds[0]["image"].shape, [int(ds[i]["class"]) for i in range(len(ds))]
    (7, torch.Size([3, 96, 96]), [0, 1, 2, -1, -1, -1, -1])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets.downloads import require_files
from contrastkit.datasets.images import bad_file, check_index
from contrastkit.errors import InvalidParameter

__all__ = ["STL10_CLASSES", "STL10Dataset"]

#: The class names in label order (as in ``class_names.txt``).
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")

_FOLDER = "stl10_binary"
_SIDE = 96
_BYTES = 3 * _SIDE * _SIDE
# subset -> the (images, labels or None) file pairs it concatenates, in order
_PARTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "train": (("train_X.bin", "train_y.bin"),),
    "test": (("test_X.bin", "test_y.bin"),),
    "unlabeled": (("unlabeled_X.bin", None),),
    "train+unlabeled": (("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)),
}


def _count_images(path: Path) -> int:
    size = path.stat().st_size
    if size == 0:
        raise bad_file(path, "is empty; delete it and download STL-10 again")
    if size % _BYTES:
        raise bad_file(path, f"size {size} is not a whole number of 96x96x3 images; delete it and download STL-10 again")
    return size // _BYTES


def _read_labels(path: Path, count: int) -> np.ndarray:
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if len(labels) != count:
        raise bad_file(path, f"{len(labels)} labels for {count} images; delete it and download STL-10 again")
    if len(labels) and not (labels.min() >= 1 and labels.max() <= 10):
        raise bad_file(path, "labels outside 1-10; delete it and download STL-10 again")
    return labels - 1


def _read_classes(folder: Path) -> tuple[str, ...]:
    try:
        names = tuple(line.strip() for line in (folder / "class_names.txt").read_text().splitlines() if line.strip())
    except OSError:
        return STL10_CLASSES
    return names if len(names) == 10 else STL10_CLASSES


class STL10Dataset(torch.utils.data.Dataset):
    """STL-10 images (uint8 ``[3, 96, 96]``) from memory-mapped binaries; ``class`` 0-9 where labelled.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> params = STL10Dataset.contract_params_for(Path(tempfile.mkdtemp()))
        >>> train, test = STL10Dataset(split="train", **params), STL10Dataset(split="test", **params)
        >>> len(train), train.label_keys, len(test), test.label_keys
        (4, (), 2, ('class',))
    """

    label_keys: tuple[str, ...]

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        root: str,
        subset: Literal["unlabeled", "train", "train+unlabeled", "test"] = "unlabeled",
        download: bool = False,
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if subset not in _PARTS:
            raise InvalidParameter("subset", "must be one of 'unlabeled', 'train', 'train+unlabeled', 'test'", subset)
        self.split = split
        self.subset = subset if split == "train" else "test"
        self.root = Path(root).expanduser()
        folder = self.root / _FOLDER
        parts = _PARTS[self.subset]
        needed = [folder / name for pair in parts for name in pair if name is not None]
        require_files(needed, title="STL-10", folder=_FOLDER, root=self.root, given=root, download=download,
                      torchvision_dataset="STL10")
        self._files: list[tuple[str, int]] = []  # (images file, image count) per part
        targets = []
        for images_name, labels_name in parts:
            count = _count_images(folder / images_name)
            self._files.append((os.fspath(folder / images_name), count))
            targets.append(_read_labels(folder / labels_name, count) if labels_name else np.full(count, -1, np.int64))
        self._ends = np.cumsum([count for _, count in self._files])
        self.targets = torch.from_numpy(np.concatenate(targets))
        # Only a purely unlabelled subset lacks the label; mixed subsets mark unlabelled images -1.
        self.label_keys = () if self.subset == "unlabeled" else ("class",)
        self.classes = _read_classes(folder)
        self._maps: list[np.ndarray] | None = None

    def _images(self) -> list[np.ndarray]:
        # Opened lazily so that each DataLoader worker maps the files itself.
        if self._maps is None:
            self._maps = [
                np.memmap(path, dtype=np.uint8, mode="r", shape=(count, 3, _SIDE, _SIDE)) for path, count in self._files
            ]
        return self._maps

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = None  # pickling a memmap would copy the whole file
        return state

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = check_index("stl10", index, len(self))
        part = int(np.searchsorted(self._ends, index, side="right"))
        local = index - (int(self._ends[part - 1]) if part else 0)
        stored = self._images()[part][local]  # [3, W, H]: each channel is stored column by column
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(stored.transpose(0, 2, 1))),
            "index": torch.tensor(index, dtype=torch.int64),
        }
        if self.label_keys:
            item["class"] = self.targets[index]
        return item

    @classmethod
    def contract_params_for(cls, tmp_dir: Path) -> dict[str, Any]:
        """Write tiny fake STL-10 binaries (3 train, 2 test, 4 unlabelled images) under ``tmp_dir``.

        Example:
            >>> import tempfile
            >>> params = STL10Dataset.contract_params_for(Path(tempfile.mkdtemp()))
            >>> [len(STL10Dataset(subset=subset, **params)) for subset in ("train", "unlabeled", "test")]
            [3, 4, 2]
        """
        root = Path(tmp_dir) / "stl10"
        folder = root / _FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for name, count in (("train", 3), ("test", 2), ("unlabeled", 4)):
            rng.integers(0, 256, count * _BYTES, dtype=np.uint8).tofile(folder / f"{name}_X.bin")
            if name != "unlabeled":
                (np.arange(count, dtype=np.uint8) % 10 + 1).tofile(folder / f"{name}_y.bin")
        return {"root": os.fspath(root)}
