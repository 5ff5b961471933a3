"""image-folder: layouts, labels, resizing, splits and one-line errors that name the file at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.datasets.image_folder import ImageFolderDataset
from contrastkit.errors import ContrastkitError, InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset


def _solid(path: Path, value: int, size: tuple[int, int] = (24, 20)) -> None:
    """An RGB image of one grey level (width, height = ``size``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def _classes(root: Path) -> None:
    """root/<cls>/<i>.png whose grey level is 50 * class + i."""
    for c, name in enumerate(("ant", "bee", "cow")):
        for i in range(2):
            _solid(root / name / f"{i}.png", 50 * c + i, size=(24 + 7 * i, 20))


def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    _classes(tmp_path)
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=16)
    check_dataset(ds, samples=len(ds))
    assert ds.label_keys == ("class",) and ds.classes == ("ant", "bee", "cow")
    assert len(ds) == 6
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.uint8
        assert item["index"].dtype == torch.int64 and int(item["index"]) == i
        assert item["class"].dtype == torch.int64 and item["class"].ndim == 0
        value = int(item["image"][0, 8, 8])
        assert int(item["class"]) == value // 50, "label does not match the image's class folder"


def test_flat_folder_has_no_labels(tmp_path: Path) -> None:
    for i in range(3):
        _solid(tmp_path / f"img{i}.jpg", 10 * i)
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)
    check_dataset(ds)
    assert ds.label_keys == () and "class" not in ds[0] and len(ds) == 3


def test_mixed_layout_is_unlabelled_and_complete(tmp_path: Path) -> None:
    _solid(tmp_path / "top.png", 1)
    _solid(tmp_path / "sub" / "a.png", 2)
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)
    assert ds.label_keys == () and len(ds) == 2


def test_order_is_sorted_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    for name in ("b10.png", "b2.png", "a.png"):
        _solid(tmp_path / name, 0)
    _solid(tmp_path / ".hidden.png", 0)
    _solid(tmp_path / ".cache" / "x.png", 0)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)
    assert [Path(p).name for p in ds.paths] == ["a.png", "b2.png", "b10.png"]


def test_extensions_filter(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 0)
    _solid(tmp_path / "b.JPG", 0)
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8, extensions=("jpg",))
    assert [Path(p).name for p in ds.paths] == ["b.JPG"]


def test_centre_square_is_kept(tmp_path: Path) -> None:
    """A 30x10 image whose thirds are red, green, blue keeps only the green centre."""
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[:, :10, 0] = pixels[:, 10:20, 1] = pixels[:, 20:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    for size in (10, 5, 20):
        image = ImageFolderDataset(split="train", root=str(tmp_path), image_size=size)[0]["image"]
        assert image.shape == (3, size, size)
        inner = image[:, 1:-1, 1:-1].float()
        assert inner[1].min() > 200 and inner[0].max() < 60 and inner[2].max() < 60, f"size {size}: not the centre"


def test_gray_channels_and_16_bit_input(tmp_path: Path) -> None:
    Image.fromarray(np.full((12, 12), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=6, channels="gray")
    image = ds[0]["image"]
    assert image.shape == (1, 6, 6) and int(image.min()) == 255, "16-bit white must stay white"
    rgb = ImageFolderDataset(split="train", root=str(tmp_path), image_size=6)[0]["image"]
    assert rgb.shape == (3, 6, 6) and int(rgb.min()) == 255


def test_corrupt_file_fails_when_read_with_its_path(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 0)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)  # lazy: construction succeeds
    ds[0]
    with pytest.raises(ContrastkitError) as info:
        ds[1]
    message = str(info.value)
    assert message.startswith(f"{bad}: cannot decode image (") and message.endswith("); remove or replace the file")
    assert "\n" not in message
    with pytest.raises(ContrastkitError, match="b.png: cannot decode image"):
        ds.verify()


def test_truncated_file_is_caught_by_full_verify(tmp_path: Path) -> None:
    good = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:400])
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)
    with pytest.raises(ContrastkitError, match=r"cut\.png: cannot decode image .*; remove or replace the file"):
        ds[1]
    with pytest.raises(ContrastkitError, match=r"cut\.png: cannot decode image"):
        ds.verify(decode=True)


def test_verify_decodes_every_good_file_without_complaint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contrastkit.datasets import folder_dataset

    _classes(tmp_path)
    checked: list[tuple[Path, bool]] = []
    real = folder_dataset.verify_image

    def recording(path: Path, *, decode: bool) -> None:
        checked.append((Path(path), decode))
        real(path, decode=decode)

    monkeypatch.setattr(folder_dataset, "verify_image", recording)
    assert ImageFolderDataset(split="train", root=str(tmp_path)).verify(decode=True) is None
    assert sorted(checked) == sorted((p, True) for p in tmp_path.rglob("*.png")) and len(checked) == 6


def test_missing_root(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(InvalidParameter) as info:
        ImageFolderDataset(split="train", root=missing)
    assert str(info.value) == f"root: folder not found; check the path (got {missing!r})"


def test_root_is_a_file(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 0)
    with pytest.raises(InvalidParameter, match="^root: is a file, not a folder"):
        ImageFolderDataset(split="train", root=str(tmp_path / "a.png"))


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_folder_without_images(tmp_path: Path, content: str | None) -> None:
    if content:
        (tmp_path / content).write_text("x")
    with pytest.raises(InvalidParameter, match=r"^root: no image files \(\.jpg, \.jpeg, \.png, \.\.\.\) under this folder"):
        ImageFolderDataset(split="train", root=str(tmp_path))


def test_test_split_reads_test_root_with_shared_class_indices(tmp_path: Path) -> None:
    _solid(tmp_path / "train" / "ant" / "0.png", 0)
    _solid(tmp_path / "train" / "cow" / "0.png", 100)
    _solid(tmp_path / "test" / "bee" / "0.png", 50)
    _solid(tmp_path / "test" / "cow" / "0.png", 100)
    kw = {"root": str(tmp_path / "train"), "test_root": str(tmp_path / "test"), "image_size": 8}
    train = ImageFolderDataset(split="train", **kw)
    test = ImageFolderDataset(split="test", **kw)
    assert train.classes == test.classes == ("ant", "bee", "cow")
    assert [int(train[i]["class"]) for i in range(2)] == [0, 2]
    assert [int(test[i]["class"]) for i in range(2)] == [1, 2]
    assert all("test" in p for p in test.paths) and all("train" in p for p in train.paths)


def test_test_split_without_test_root_reads_root(tmp_path: Path) -> None:
    _classes(tmp_path)
    assert ImageFolderDataset(split="test", root=str(tmp_path)).paths == ImageFolderDataset(root=str(tmp_path)).paths


def test_empty_test_root_names_test_root(tmp_path: Path) -> None:
    _classes(tmp_path / "train")
    (tmp_path / "test").mkdir()
    with pytest.raises(InvalidParameter, match="^test_root: no image files"):
        ImageFolderDataset(split="test", root=str(tmp_path / "train"), test_root=str(tmp_path / "test"))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"image_size": 0}, "image_size"), ({"channels": "cmyk"}, "channels"), ({"extensions": ()}, "extensions"), ({"split": "val"}, "split")],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, param: str) -> None:
    _classes(tmp_path)
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        ImageFolderDataset(**{"root": str(tmp_path), **kwargs})


def test_batches_and_index_bounds(tmp_path: Path) -> None:
    _classes(tmp_path)
    ds = ImageFolderDataset(split="train", root=str(tmp_path), image_size=8)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 8, 8) and batch["index"].tolist() == [0, 1, 2, 3]
    assert int(ds[-1]["index"]) == len(ds) - 1
    with pytest.raises(IndexError, match="image-folder: index 6 out of range"):
        ds[6]


def test_recipe_values_fit_the_signature(tmp_path: Path) -> None:
    """TOML gives arrays for tuples; the factory's annotations must accept them."""
    params = ImageFolderDataset.contract_params_for(tmp_path)
    kwargs = validate_params(
        ImageFolderDataset,
        {**params, "extensions": ["png"], "channels": "gray"},
        kind="datasets",
        name="image-folder",
        table="data",
        injected={"split": "train"},
    )
    ds = ImageFolderDataset(**kwargs)
    assert ds.extensions == (".png",) and ds[0]["image"].shape == (1, 16, 16)


def test_contract_params(tmp_path: Path) -> None:
    check_dataset(ImageFolderDataset(**ImageFolderDataset.contract_params_for(tmp_path), split="train"))
