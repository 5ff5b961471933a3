"""``cifar10``: CIFAR-10 from its python-pickle batches (``cifar-10-batches-py``), labelled by class.

``root`` is the folder that *contains* ``cifar-10-batches-py/`` (the extracted
``cifar-10-python.tar.gz``; that folder itself is accepted too): ``data_batch_1`` .. ``data_batch_5`` for ``split="train"`` (50 000 images),
``test_batch`` for ``split="test"`` (10 000). The batches are read directly, all at construction
(150 MB for train), into uint8 ``[N, 3, 32, 32]``; items are ``{"image", "index", "class"}`` with
``class`` 0-9 (names in ``classes``, from ``batches.meta`` when present).

Nothing is downloaded unless ``download = true``: then torchvision's downloader fetches and
md5-checks the archive into ``root`` (only when the batch files are missing). The batches are
unpickled with a restricted unpickler that accepts only numpy arrays and plain containers, so a
tampered file cannot run code.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> params = CIFAR10Dataset.contract_params_for(Path(tempfile.mkdtemp()))
    >>> ds = CIFAR10Dataset(split="test", **params)
    >>> len(ds), ds[0]["image"].shape, ds.classes[:2]
    (4, torch.Size([3, 32, 32]), ('airplane', 'automobile'))
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets.downloads import require_files
from contrastkit.datasets.images import bad_file, check_index
from contrastkit.errors import InvalidParameter

__all__ = ["CIFAR10_CLASSES", "CIFAR10Dataset"]

#: The class names in label order (as in ``batches.meta``).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_FOLDER = "cifar-10-batches-py"
_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_PIXELS = 3 * 32 * 32

# What a CIFAR batch pickle may reference (numpy >= 2 moved numpy.core to numpy._core).
_SAFE_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Refuses every global but the few a numpy-array pickle needs."""

    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy.core", "numpy._core", 1) if module.startswith("numpy.core") else module
        if (canonical, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        for candidate in dict.fromkeys((canonical, module)):  # numpy 2 name first, then the pickled one
            try:
                return super().find_class(candidate, name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot import {module}.{name}")


def _unpickle(stream: BinaryIO) -> Any:
    return _BatchUnpickler(stream, encoding="latin1").load()  # latin1: the batches are python-2 pickles


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 3, 32, 32], labels int64 [N])`` from one batch file; clear error otherwise."""
    try:
        with open(path, "rb") as stream:
            batch = _unpickle(stream)
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, EOFError, ValueError, TypeError, KeyError, pickle.UnpicklingError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise bad_file(path, f"not a CIFAR-10 batch ({reason}); delete it and download CIFAR-10 again") from None
    if data.ndim != 2 or data.shape[1] != _PIXELS or len(labels) != len(data):
        raise bad_file(
            path,
            f"not a CIFAR-10 batch (data {data.shape}, {len(labels)} labels; expected [N, {_PIXELS}] and N labels); "
            "delete it and download CIFAR-10 again",
        )
    if len(labels) and not (labels.min() >= 0 and labels.max() < 10):
        raise bad_file(path, "labels outside 0-9; delete it and download CIFAR-10 again")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R plane, G plane, B plane, each row-major


def _read_classes(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return CIFAR10_CLASSES
    try:
        with open(meta, "rb") as stream:
            names = tuple(str(n) for n in _unpickle(stream)["label_names"])
    except (OSError, EOFError, ValueError, TypeError, KeyError, pickle.UnpicklingError):
        return CIFAR10_CLASSES  # the names are cosmetic; the batches carry the labels
    return names if len(names) == 10 else CIFAR10_CLASSES


class CIFAR10Dataset(torch.utils.data.Dataset):
    """CIFAR-10 as uint8 ``[3, 32, 32]`` images with a ``class`` label (0-9); never downloads by default.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> ds = CIFAR10Dataset(**CIFAR10Dataset.contract_params_for(Path(tempfile.mkdtemp())))
        >>> len(ds), int(ds[7]["class"]), int(ds[7]["index"])
        (10, 7, 7)
    """

    label_keys = ("class",)

    def __init__(self, *, split: Literal["train", "test"] = "train", root: str, download: bool = False) -> None:
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        self.split = split
        self.root = Path(root).expanduser()
        # Also accept root pointing at the batches folder itself.
        folder = self.root if (self.root / _FILES[split][0]).is_file() else self.root / _FOLDER
        files = [folder / name for name in _FILES[split]]
        require_files(files, title="CIFAR-10", folder=_FOLDER, root=self.root, given=root, download=download,
                      torchvision_dataset="CIFAR10")
        batches = [_read_batch(f) for f in files]
        self.images = torch.from_numpy(np.concatenate([b[0] for b in batches]))
        self.targets = torch.from_numpy(np.concatenate([b[1] for b in batches]))
        self.classes = _read_classes(folder)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = check_index("cifar10", index, len(self))
        return {
            "image": self.images[index],
            "index": torch.tensor(index, dtype=torch.int64),
            "class": self.targets[index],
        }

    @classmethod
    def contract_params_for(cls, tmp_dir: Path) -> dict[str, Any]:
        """Write a tiny fake ``cifar-10-batches-py`` (2 images per train batch, 4 test) under ``tmp_dir``.

        Example:
            >>> import tempfile
            >>> root = Path(CIFAR10Dataset.contract_params_for(Path(tempfile.mkdtemp()))["root"])
            >>> sorted(path.name for path in (root / "cifar-10-batches-py").iterdir())[:3]
            ['batches.meta', 'data_batch_1', 'data_batch_2']
        """
        root = Path(tmp_dir) / "cifar10"
        folder = root / _FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        sizes = dict.fromkeys(_FILES["train"], 2) | {"test_batch": 4}
        start = 0
        for name, n in sizes.items():
            labels = [(start + i) % 10 for i in range(n)]
            start = 0 if name == "test_batch" else start + n
            batch = {"data": rng.integers(0, 256, (n, _PIXELS), dtype=np.uint8), "labels": labels}
            with open(folder / name, "wb") as stream:
                pickle.dump(batch, stream, protocol=2)
        with open(folder / "batches.meta", "wb") as stream:
            pickle.dump({"label_names": list(CIFAR10_CLASSES)}, stream, protocol=2)
        return {"root": os.fspath(root)}
