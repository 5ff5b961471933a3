"""stl10: tiny fake binaries in STL-10's column-major layout, subsets, labels, and no network by default."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastkit.datasets.stl10 import STL10Dataset
from contrastkit.errors import ContrastkitError, InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset

SIDE = 96


def _value(n: np.ndarray, c: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pixel (channel c, row h, column w) of image n; rows and columns weigh differently."""
    return (n * 50 + c * 7 + h * 2 + w * 3) % 256


def _write_images(path: Path, count: int, first: int = 0) -> None:
    """Column-major per channel: for each image, channel, column w, the 96 rows h are consecutive."""
    n, c, w, h = np.meshgrid(np.arange(first, first + count), np.arange(3), np.arange(SIDE), np.arange(SIDE), indexing="ij")
    _value(n, c, h, w).astype(np.uint8).tofile(path)


def _write(root: Path, *, train: int = 3, test: int = 2, unlabeled: int = 4) -> Path:
    """Train image i is labelled (i % 10) + 1 on file (class i % 10); test image i has file label 10 - i."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    _write_images(folder / "train_X.bin", train)
    (np.arange(train) % 10 + 1).astype(np.uint8).tofile(folder / "train_y.bin")
    _write_images(folder / "test_X.bin", test)
    (10 - np.arange(test)).astype(np.uint8).tofile(folder / "test_y.bin")
    _write_images(folder / "unlabeled_X.bin", unlabeled, first=100)
    return folder


def _expected(n: int) -> torch.Tensor:
    c, h, w = np.meshgrid(np.arange(3), np.arange(SIDE), np.arange(SIDE), indexing="ij")
    return torch.from_numpy(_value(np.full_like(c, n), c, h, w).astype(np.uint8))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    import torchvision.datasets.utils as tv_utils

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail("tried to download")

    for name in ("download_and_extract_archive", "download_url"):
        monkeypatch.setattr(tv_utils, name, refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_train_subset_pixels_and_labels(tmp_path: Path, no_network: None) -> None:
    _write(tmp_path)
    ds = STL10Dataset(split="train", root=str(tmp_path), subset="train")
    check_dataset(ds, samples=len(ds))
    assert len(ds) == 3 and ds.label_keys == ("class",)
    for i in range(3):
        item = ds[i]
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, SIDE, SIDE)
        assert torch.equal(item["image"], _expected(i)), f"image {i}: rows and columns are mixed up"
        assert int(item["class"]) == i % 10 and item["class"].dtype == torch.int64
        assert int(item["index"]) == i


def test_default_train_subset_is_unlabelled(tmp_path: Path, no_network: None) -> None:
    _write(tmp_path)
    ds = STL10Dataset(split="train", root=str(tmp_path))
    check_dataset(ds)
    assert ds.subset == "unlabeled" and ds.label_keys == () and "class" not in ds[0] and len(ds) == 4
    assert torch.equal(ds[2]["image"], _expected(102))


def test_train_plus_unlabeled(tmp_path: Path) -> None:
    _write(tmp_path)
    ds = STL10Dataset(split="train", root=str(tmp_path), subset="train+unlabeled")
    check_dataset(ds, samples=len(ds))
    assert [int(ds[i]["class"]) for i in range(len(ds))] == [0, 1, 2, -1, -1, -1, -1]
    assert torch.equal(ds[2]["image"], _expected(2)) and torch.equal(ds[3]["image"], _expected(100))
    assert torch.equal(ds[-1]["image"], _expected(103)) and int(ds[-1]["index"]) == 6
    with pytest.raises(IndexError, match="stl10: index 7 out of range"):
        ds[7]


def test_test_split_ignores_subset(tmp_path: Path) -> None:
    _write(tmp_path)
    ds = STL10Dataset(split="test", root=str(tmp_path), subset="unlabeled")
    assert ds.subset == "test" and len(ds) == 2 and [int(ds[i]["class"]) for i in range(2)] == [9, 8]


def test_matches_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same pixels as torchvision's reader (its md5 check bypassed for the fake files)."""
    from torchvision.datasets import STL10

    _write(tmp_path)
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    reference = STL10(str(tmp_path), split="train", download=False)
    ours = STL10Dataset(split="train", root=str(tmp_path), subset="train")
    assert torch.equal(torch.stack([ours[i]["image"] for i in range(len(ours))]), torch.from_numpy(reference.data))
    assert ours.targets.tolist() == reference.labels.tolist()


def test_pickled_dataset_carries_paths_not_pixels(tmp_path: Path) -> None:
    _write(tmp_path, unlabeled=20)
    ds = STL10Dataset(split="train", root=str(tmp_path))
    first = ds[5]["image"]  # maps the file in this process
    blob = pickle.dumps(ds)
    assert len(blob) < 20 * 3 * SIDE * SIDE // 10, "the memory map was pickled with the dataset"
    assert torch.equal(pickle.loads(blob)[5]["image"], first)


def test_missing_files_without_download(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(InvalidParameter) as info:
        STL10Dataset(split="train", root=str(tmp_path))
    assert str(info.value) == (
        "root: STL-10 not found here (no stl10_binary/unlabeled_X.bin); set download = true or point root at the "
        f"extracted stl10_binary folder's parent (got {str(tmp_path)!r})"
    )
    folder = _write(tmp_path)
    (folder / "test_y.bin").unlink()
    STL10Dataset(split="train", root=str(tmp_path))  # the train subsets do not need it
    with pytest.raises(InvalidParameter, match="no stl10_binary/test_y.bin"):
        STL10Dataset(split="test", root=str(tmp_path))


def test_download_uses_torchvision_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils
    from torchvision.datasets import STL10

    calls = []

    def fake_download(url: str, download_root: str, filename: str | None = None, md5: str | None = None, **kw: object) -> None:
        calls.append((url, download_root, filename, md5))
        _write(Path(download_root))

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    ds = STL10Dataset(split="test", root=str(tmp_path), download=True)
    assert calls == [(STL10.url, str(tmp_path), STL10.filename, STL10.tgz_md5)] and len(ds) == 2
    STL10Dataset(split="test", root=str(tmp_path), download=True)
    assert len(calls) == 1, "files present: no second download"


def test_truncated_images_file(tmp_path: Path) -> None:
    folder = _write(tmp_path)
    path = folder / "unlabeled_X.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ContrastkitError) as info:
        STL10Dataset(split="train", root=str(tmp_path))
    assert str(info.value).startswith(f"{path}: size ") and "download STL-10 again" in str(info.value)


def test_label_count_mismatch(tmp_path: Path) -> None:
    folder = _write(tmp_path)
    np.array([1, 2], np.uint8).tofile(folder / "train_y.bin")
    with pytest.raises(ContrastkitError, match=r"train_y.bin: 2 labels for 3 images"):
        STL10Dataset(split="train", root=str(tmp_path), subset="train")


@pytest.mark.parametrize(("kwargs", "param"), [({"subset": "val"}, "subset"), ({"split": "val"}, "split")])
def test_bad_parameters(tmp_path: Path, kwargs: dict, param: str) -> None:
    _write(tmp_path)
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        STL10Dataset(**{"root": str(tmp_path), **kwargs})


def test_recipe_values_fit_the_signature(tmp_path: Path, no_network: None) -> None:
    params = STL10Dataset.contract_params_for(tmp_path)
    kwargs = validate_params(
        STL10Dataset, {**params, "subset": "train+unlabeled", "download": False},
        kind="datasets", name="stl10", table="data", injected={"split": "train"},
    )
    ds = STL10Dataset(**kwargs)
    check_dataset(ds)
    assert len(ds) == 7
