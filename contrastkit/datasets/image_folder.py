"""``image-folder``: every image file under a folder, optionally labelled by class subfolder.

Two layouts are recognised:

- **class subfolders** (``root/cat/1.jpg``, ``root/dog/a/2.png``): when *every* image lies inside a
  subfolder of ``root``, the top-level subfolder names are the classes and each item has a
  ``"class"`` label (int64, the index of the name in the sorted class list ``classes``);
- **flat** (``root/1.jpg``, ...) or mixed: no labels (``label_keys == ()``); images in
  subfolders are still included.

Images are decoded with Pillow when an item is read, converted to RGB (or grayscale), and their
centred square is resized to ``image_size x image_size``: uint8 ``[3 or 1, S, S]``. The file list is
built once at construction, sorted, so indices are stable from run to run. A file that cannot be
decoded raises, when it is read, a one-line error naming it; :meth:`ImageFolderDataset.verify`
checks every file up front.

``decode = "device"`` (JPEG files only) makes items carry each file's bytes instead of its pixels;
the batch is then decoded at once on the training device (nvJPEG on CUDA), centre-cropped and
resized there (:mod:`contrastkit.datasets.encoded_images`). Without CUDA the workers decode with
Pillow as usual (the fallback), so a recipe runs everywhere.

Splits: ``split="test"`` reads ``test_root``; without one it reads ``root`` again (the kNN probe then
scores the training images, which measures fit, not generalisation). With ``test_root``, the class
list is the sorted union of both folders' top-level subfolders, so a class has the same index in
both splits.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = ImageFolderDataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = ImageFolderDataset(split="train", **params)
    >>> ds.label_keys, ds.classes, ds[0]["image"].shape
    (('class',), ('cat', 'dog'), torch.Size([3, 16, 16]))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from contrastkit.datasets.encoded_images import JPEG_EXTENSIONS, encoded_item
from contrastkit.datasets.folder_dataset import FolderDataset
from contrastkit.datasets.images import (
    IMAGE_EXTENSIONS,
    check_index,
    existing_folder,
    list_images,
    load_image,
    no_image_files,
)
from contrastkit.errors import InvalidParameter

__all__ = ["ImageFolderDataset"]


class ImageFolderDataset(FolderDataset):
    """Images from a folder (class subfolders optional), decoded lazily to uint8 ``[C, S, S]``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> params = ImageFolderDataset.contract_params_for(Path(tempfile.mkdtemp()))
        >>> ds = ImageFolderDataset(split="test", channels="gray", **params)
        >>> len(ds), ds[3]["image"].shape, int(ds[3]["class"])
        (4, torch.Size([1, 16, 16]), 1)
    """

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        root: str,
        image_size: int = 64,
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
        test_root: str | None = None,
        channels: Literal["rgb", "gray"] = "rgb",
        decode: Literal["workers", "device"] = "workers",
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if channels not in ("rgb", "gray"):
            raise InvalidParameter("channels", "must be 'rgb' or 'gray'", channels)
        if decode not in ("workers", "device"):
            raise InvalidParameter(
                "decode", "must be 'workers' (Pillow in DataLoader workers) or 'device' (JPEG bytes decoded as a "
                "batch on the training device)", decode,
            )
        self._keep_image_parameters(split=split, image_size=image_size, extensions=extensions)
        self.decode = decode
        self.channels = channels
        train_folder = existing_folder(root, "root")
        test_folder = existing_folder(test_root, "test_root") if test_root is not None else None
        use_test = split == "test" and test_folder is not None
        self.root = test_folder if use_test and test_folder is not None else train_folder
        parameter, given = ("test_root", test_root) if use_test else ("root", root)

        files = list_images(self.root, self.extensions)
        if not files:
            raise no_image_files(parameter, self.extensions, given)
        self.paths: tuple[str, ...] = tuple(os.fspath(p) for p in files)
        if decode == "device":
            not_jpeg = [p for p in self.paths if not p.lower().endswith(JPEG_EXTENSIONS)]
            if not_jpeg:
                raise InvalidParameter(
                    "decode", f"'device' decodes JPEG files only, and {not_jpeg[0]} is not one ({len(not_jpeg)} "
                    "such files); use decode = 'workers' or convert the files", decode,
                )
        #: Whether items carry JPEG bytes for :func:`~contrastkit.datasets.encoded_images.decode_batch`:
        #: ``decode = "device"`` on a machine with CUDA; without it the workers decode (the fallback).
        #: Set it to ``True`` to decode batches in the main process of a CPU run.
        self.decodes_on_device = decode == "device" and torch.cuda.is_available()
        folders = (train_folder,) if test_folder is None else (train_folder, test_folder)
        self._label_by_class_folder(self.root, files, folders)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = check_index("image-folder", index, len(self))
        item: dict[str, Any]
        if self.decodes_on_device:
            item = encoded_item(self.paths[index], size=self.image_size, channels=3 if self.channels == "rgb" else 1)
        else:
            item = {"image": load_image(self.paths[index], size=self.image_size, channels=self.channels)}
        item["index"] = torch.tensor(index, dtype=torch.int64)
        if self.targets is not None:
            item["class"] = self.targets[index]
        return item

    def _image_files(self) -> tuple[str, ...]:
        return self.paths

    @classmethod
    def contract_params_for(cls, tmp_dir: Path) -> dict[str, Any]:
        """Write a tiny two-class folder (2 images each, odd sizes) under ``tmp_dir``; return the params.

        Example:
            >>> import tempfile
            >>> params = ImageFolderDataset.contract_params_for(Path(tempfile.mkdtemp()))
            >>> sorted(path.name for path in Path(params["root"]).rglob("*.png")), params["image_size"]
            (['0_0.png', '0_1.png', '1_0.png', '1_1.png'], 16)
        """
        from PIL import Image

        root = Path(tmp_dir) / "image-folder"
        rng = np.random.default_rng(0)
        for c, name in enumerate(("cat", "dog")):
            (root / name).mkdir(parents=True, exist_ok=True)
            for i, (h, w) in enumerate(((20, 28), (33, 17))):
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / name / f"{c}_{i}.png")
        return {"root": os.fspath(root), "image_size": 16}
