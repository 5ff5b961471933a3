"""cifar10: reads fake python-pickle batches in torchvision's layout; never touches the network by default."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastkit.datasets.cifar10 import CIFAR10_CLASSES, CIFAR10Dataset
from contrastkit.errors import ContrastkitError, InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _write(folder: Path, per_batch: int = 3, test_size: int = 4) -> None:
    """Fake batches: image n of the split has every byte = n, except R(0,1) = 200 and G(1,0) = 100."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in [*TRAIN, "test_batch"]:
        n = test_size if name == "test_batch" else per_batch
        first = 0 if name == "test_batch" else count
        data = np.repeat(np.arange(first, first + n, dtype=np.uint8)[:, None], 3072, axis=1)
        data[:, 1] = 200  # R plane, row 0, column 1
        data[:, 1024 + 32] = 100  # G plane, row 1, column 0
        labels = [(first + i) % 10 for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f, protocol=2)
        if name != "test_batch":
            count += n
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test."""
    import urllib.request

    import torchvision.datasets.utils as tv_utils

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail("tried to download")

    for name in ("download_and_extract_archive", "download_url"):
        monkeypatch.setattr(tv_utils, name, refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_train_split_reads_the_five_batches(tmp_path: Path, no_network: None) -> None:
    _write(tmp_path / "cifar-10-batches-py")
    ds = CIFAR10Dataset(split="train", root=str(tmp_path))
    check_dataset(ds, samples=len(ds))
    assert len(ds) == 15 and ds.label_keys == ("class",) and ds.classes == tuple(f"c{i}" for i in range(10))
    for i in range(len(ds)):
        item = ds[i]
        image = item["image"]
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        assert int(image[2, 5, 5]) == i, "images out of order"
        assert int(image[0, 0, 1]) == 200 and int(image[1, 1, 0]) == 100, "channel/row/column layout is wrong"
        assert int(item["class"]) == i % 10 and item["class"].dtype == torch.int64
        assert int(item["index"]) == i


def test_test_split_reads_test_batch(tmp_path: Path, no_network: None) -> None:
    _write(tmp_path / "cifar-10-batches-py")
    ds = CIFAR10Dataset(split="test", root=str(tmp_path))
    assert len(ds) == 4 and [int(ds[i]["class"]) for i in range(4)] == [0, 1, 2, 3]


def test_root_may_be_the_batches_folder(tmp_path: Path) -> None:
    _write(tmp_path / "cifar-10-batches-py")
    assert len(CIFAR10Dataset(split="test", root=str(tmp_path / "cifar-10-batches-py"))) == 4


def test_matches_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same pixels and labels as torchvision's reader (its md5 check bypassed for the fake files)."""
    from torchvision.datasets import CIFAR10

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*TRAIN, "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "labels": [3, 7]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, f, protocol=2)
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    reference = CIFAR10(str(tmp_path), train=True, download=False)
    ours = CIFAR10Dataset(split="train", root=str(tmp_path))
    assert torch.equal(ours.images, torch.from_numpy(reference.data).permute(0, 3, 1, 2))
    assert ours.targets.tolist() == reference.targets


def test_missing_files_without_download(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(InvalidParameter) as info:
        CIFAR10Dataset(split="train", root=str(tmp_path))
    assert str(info.value) == (
        "root: CIFAR-10 not found here (no cifar-10-batches-py/data_batch_1); set download = true or point root at "
        f"the extracted cifar-10-batches-py folder's parent (got {str(tmp_path)!r})"
    )
    _write(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(InvalidParameter, match="no cifar-10-batches-py/data_batch_4"):
        CIFAR10Dataset(split="train", root=str(tmp_path))


def test_download_uses_torchvision_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils
    from torchvision.datasets import CIFAR10

    calls = []

    def fake_download(url: str, download_root: str, filename: str | None = None, md5: str | None = None, **kw: object) -> None:
        calls.append((url, download_root, filename, md5))
        _write(Path(download_root) / "cifar-10-batches-py")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    ds = CIFAR10Dataset(split="test", root=str(tmp_path), download=True)
    assert calls == [(CIFAR10.url, str(tmp_path), CIFAR10.filename, CIFAR10.tgz_md5)] and len(ds) == 4
    CIFAR10Dataset(split="test", root=str(tmp_path), download=True)
    assert len(calls) == 1, "files present: no second download"


def test_corrupt_batch_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder)
    (folder / "data_batch_2").write_bytes(b"\x80\x02 truncated")
    with pytest.raises(ContrastkitError) as info:
        CIFAR10Dataset(split="train", root=str(tmp_path))
    assert str(info.value).startswith(f"{folder / 'data_batch_2'}: not a CIFAR-10 batch (")
    assert str(info.value).endswith("delete it and download CIFAR-10 again")


def test_wrong_shape_batch(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ContrastkitError, match=r"test_batch: not a CIFAR-10 batch \(data \(2, 100\)"):
        CIFAR10Dataset(split="test", root=str(tmp_path))


class _Payload:
    def __reduce__(self) -> tuple:
        return (print, ("pwned",))


def test_pickles_cannot_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": _Payload(), "labels": []}, f, protocol=2)
    with pytest.raises(ContrastkitError, match=r"refusing to load (__builtin__|builtins)\.print"):
        CIFAR10Dataset(split="test", root=str(tmp_path))
    assert "pwned" not in capsys.readouterr().out


def test_bad_split(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="^split: "):
        CIFAR10Dataset(split="val", root=str(tmp_path))  # type: ignore[arg-type]


def test_recipe_values_fit_the_signature(tmp_path: Path, no_network: None) -> None:
    params = CIFAR10Dataset.contract_params_for(tmp_path)
    kwargs = validate_params(
        CIFAR10Dataset, {**params, "download": False},
        kind="datasets", name="cifar10", table="data", injected={"split": "train"},
    )
    check_dataset(CIFAR10Dataset(**kwargs))
