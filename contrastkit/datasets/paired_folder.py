"""``paired-folder``: RGB, depth (and optionally surface-normal) images of one scene, for CMC's NYU-style views.

Three parallel folders hold one file per scene, matched by relative path without extension
(``rgb/kitchen/0001.jpg`` pairs with ``depth/kitchen/0001.png``). Each item's ``"image"`` is the
channels concatenated, uint8 ``[3 + 1 (+ 3), S, S]``; ``channel_groups`` says which channels are
which, so a view maker can split them::

    {"rgb": (0, 3), "depth": (3, 4)}                   # without normals
    {"rgb": (0, 3), "depth": (3, 4), "normals": (4, 7)}

- **RGB** and **normals** (normals stored as 8-bit RGB images, the usual ``(n + 1) / 2 * 255``
  encoding) are read like ``image-folder``'s images.
- **Depth** becomes one 8-bit channel. ``depth_scale`` unset: 8-bit depth files keep their values;
  16-bit (or 32-bit) files are divided by their own maximum, so every image spans 0..255 (relative
  depth). ``depth_scale`` set: a raw value ``v`` maps to ``255 * v / depth_scale``, clipped, the
  same for every image (metric depth; e.g. ``10000`` for NYU's millimetres up to 10 m).

Every image's centred square is resized to ``image_size``. Every RGB image needs its partners: the
error lists the first few that lack one and how many. Extra depth or normals files with no RGB
image are ignored. When every RGB image lies in a subfolder of ``rgb_dir``, the top-level subfolder
names are classes and items carry a ``"class"`` label, as in ``image-folder``.

Splits: ``split="test"`` reads ``test_rgb_dir``/``test_depth_dir``/``test_normals_dir``; without them
it reads the training folders again.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = PairedFolderDataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = PairedFolderDataset(split="train", **params)
    >>> ds[0]["image"].shape, ds.channel_groups
    (torch.Size([7, 16, 16]), {'rgb': (0, 3), 'depth': (3, 4), 'normals': (4, 7)})
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets.folder_dataset import FolderDataset
from contrastkit.datasets.images import (
    IMAGE_EXTENSIONS,
    check_index,
    existing_folder,
    list_images,
    load_depth,
    load_image,
    no_image_files,
    summarize,
)
from contrastkit.errors import InvalidParameter

__all__ = ["PairedFolderDataset"]


def _by_stem(folder: Path, extensions: tuple[str, ...], parameter: str, given: str) -> dict[str, Path]:
    """``{relative path without extension: file}`` for the images under ``folder``; duplicates are errors."""
    files: dict[str, Path] = {}
    for path in list_images(folder, extensions):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in files:
            raise InvalidParameter(
                parameter, f"two images share the name {key!r} ({files[key].name}, {path.name}); keep one", given
            )
        files[key] = path
    return files


class PairedFolderDataset(FolderDataset):
    """Matched RGB + depth (+ normals) images -> uint8 ``[4 or 7, S, S]`` with ``channel_groups``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> params = PairedFolderDataset.contract_params_for(Path(tempfile.mkdtemp()))
        >>> params.pop("normals_dir")  # doctest: +ELLIPSIS
        '...normals'
        >>> ds = PairedFolderDataset(**params)
        >>> len(ds), ds[1]["image"].shape, ds.label_keys
        (3, torch.Size([4, 16, 16]), ())
    """

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        rgb_dir: str,
        depth_dir: str,
        normals_dir: str | None = None,
        image_size: int = 64,
        depth_scale: float | None = None,
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
        test_rgb_dir: str | None = None,
        test_depth_dir: str | None = None,
        test_normals_dir: str | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if depth_scale is not None and not depth_scale > 0:
            raise InvalidParameter("depth_scale", "must be > 0 (the raw depth value that maps to 255), or unset", depth_scale)
        if (test_rgb_dir is None) != (test_depth_dir is None):
            raise InvalidParameter("test_depth_dir", "set test_rgb_dir and test_depth_dir together, or neither", test_depth_dir)
        has_test = test_rgb_dir is not None
        if has_test and (normals_dir is None) != (test_normals_dir is None):
            raise InvalidParameter(
                "test_normals_dir", "must be set exactly when normals_dir is (the splits need the same channels)", test_normals_dir
            )
        if not has_test and test_normals_dir is not None:
            raise InvalidParameter("test_normals_dir", "needs test_rgb_dir and test_depth_dir", test_normals_dir)
        self._keep_image_parameters(split=split, image_size=image_size, extensions=extensions)
        self.depth_scale = depth_scale

        use_test = split == "test" and has_test
        prefix = "test_" if use_test else ""
        folders: dict[str, str | None] = (
            {"rgb": test_rgb_dir, "depth": test_depth_dir, "normals": test_normals_dir}
            if use_test
            else {"rgb": rgb_dir, "depth": depth_dir, "normals": normals_dir}
        )
        train_rgb = existing_folder(rgb_dir, "rgb_dir")
        resolved: dict[str, Path] = {}
        by_kind: dict[str, dict[str, Path]] = {}
        for kind, given in folders.items():
            if given is None:
                continue
            parameter = f"{prefix}{kind}_dir"
            resolved[kind] = existing_folder(given, parameter)
            by_kind[kind] = _by_stem(resolved[kind], self.extensions, parameter, given)
        rgb = by_kind["rgb"]
        if not rgb:
            raise no_image_files(f"{prefix}rgb_dir", self.extensions, folders["rgb"])
        keys = list(rgb)  # already sorted by relative path
        for kind in ("depth", "normals"):
            if kind not in by_kind:
                continue
            missing = [k for k in keys if k not in by_kind[kind]]
            if missing:
                raise InvalidParameter(
                    f"{prefix}{kind}_dir",
                    f"no {kind} image for {len(missing)} of {len(keys)} RGB images ({summarize(missing)}); "
                    f"give each RGB image a {kind} image with the same name (any image extension)",
                    folders[kind],
                )
        self.keys: tuple[str, ...] = tuple(keys)
        self.files: tuple[tuple[str, ...], ...] = tuple(
            tuple(os.fspath(by_kind[kind][k]) for kind in ("rgb", "depth", "normals") if kind in by_kind) for k in keys
        )
        self.channel_groups: dict[str, tuple[int, int]] = {"rgb": (0, 3), "depth": (3, 4)}
        if "normals" in by_kind:
            self.channel_groups["normals"] = (4, 7)

        # Classes from both splits' RGB folders, so a class has one index in both.
        roots = (train_rgb,) if test_rgb_dir is None else (train_rgb, existing_folder(test_rgb_dir, "test_rgb_dir"))
        self._label_by_class_folder(resolved["rgb"], [rgb[k] for k in keys], roots)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = check_index("paired-folder", index, len(self))
        files = self.files[index]
        parts = [
            load_image(files[0], size=self.image_size, channels="rgb"),
            load_depth(files[1], size=self.image_size, depth_scale=self.depth_scale),
        ]
        if len(files) == 3:
            parts.append(load_image(files[2], size=self.image_size, channels="rgb"))
        item = {"image": torch.cat(parts), "index": torch.tensor(index, dtype=torch.int64)}
        if self.targets is not None:
            item["class"] = self.targets[index]
        return item

    def _image_files(self) -> Iterator[str]:
        return (path for triple in self.files for path in triple)

    @classmethod
    def contract_params_for(cls, tmp_dir: Path) -> dict[str, Any]:
        """Write three matched RGB / 16-bit depth / normals triples under ``tmp_dir``; return the params.

        Example:
            >>> import tempfile
            >>> sorted(PairedFolderDataset.contract_params_for(Path(tempfile.mkdtemp())))
            ['depth_dir', 'image_size', 'normals_dir', 'rgb_dir']
        """
        from PIL import Image

        root = Path(tmp_dir) / "paired-folder"
        dirs = {kind: root / kind for kind in ("rgb", "depth", "normals")}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(dirs["rgb"] / f"{i:04d}.jpg")
            Image.fromarray(rng.integers(0, 5000, (20, 24), dtype=np.uint16)).save(dirs["depth"] / f"{i:04d}.png")
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(dirs["normals"] / f"{i:04d}.png")
        return {
            "rgb_dir": os.fspath(dirs["rgb"]),
            "depth_dir": os.fspath(dirs["depth"]),
            "normals_dir": os.fspath(dirs["normals"]),
            "image_size": 16,
        }
