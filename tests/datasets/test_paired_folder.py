"""paired-folder: RGB + depth (+ normals) matched by name, stacked in a known channel order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.datasets.paired_folder import PairedFolderDataset
from contrastkit.errors import InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset


def _rgb(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _depth16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)


def _scene(tmp_path: Path, names: list[str], *, normals: bool = True) -> dict[str, str]:
    """Scene ``i``: RGB (i, 10, 20), 16-bit depth constant 1000 * (i + 1), normals (200, 100, i)."""
    dirs = {k: tmp_path / k for k in ("rgb", "depth", "normals")}
    for i, name in enumerate(names):
        _rgb(dirs["rgb"] / f"{name}.png", (i, 10, 20))
        _depth16(dirs["depth"] / f"{name}.tif", np.full((10, 12), 1000 * (i + 1)))
        if normals:
            _rgb(dirs["normals"] / f"{name}.png", (200, 100, i))
    params = {"rgb_dir": str(dirs["rgb"]), "depth_dir": str(dirs["depth"]), "image_size": 8}
    if normals:
        params["normals_dir"] = str(dirs["normals"])
    return params


def test_channels_are_rgb_depth_normals_in_order(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    ds = PairedFolderDataset(split="train", depth_scale=4000.0, **_scene(tmp_path, names))
    check_dataset(ds, samples=len(ds))
    assert ds.channel_groups == {"rgb": (0, 3), "depth": (3, 4), "normals": (4, 7)}
    assert ds.label_keys == () and len(ds) == 3
    for i in range(3):
        image = ds[i]["image"]
        assert image.shape == (7, 8, 8) and image.dtype == torch.uint8
        pixel = image[:, 4, 4].tolist()
        expected_depth = round(255 * 1000 * (i + 1) / 4000)
        assert pixel == [i, 10, 20, expected_depth, 200, 100, i], f"scene {i}: {pixel}"


def test_without_normals(tmp_path: Path) -> None:
    ds = PairedFolderDataset(split="train", **_scene(tmp_path, ["a", "b"], normals=False))
    check_dataset(ds)
    assert ds.channel_groups == {"rgb": (0, 3), "depth": (3, 4)} and ds[0]["image"].shape == (4, 8, 8)


def test_16_bit_depth_is_scaled_by_its_own_maximum(tmp_path: Path) -> None:
    depth = np.zeros((8, 8))
    depth[:, :4], depth[:, 4:] = 1000, 2000
    _rgb(tmp_path / "rgb" / "x.png", (0, 0, 0), size=(8, 8))
    _depth16(tmp_path / "depth" / "x.png", depth)
    kw = {"rgb_dir": str(tmp_path / "rgb"), "depth_dir": str(tmp_path / "depth"), "image_size": 8}
    relative = PairedFolderDataset(**kw)[0]["image"][3]
    assert set(relative[:, :4].unique().tolist()) == {128} and set(relative[:, 4:].unique().tolist()) == {255}
    metric = PairedFolderDataset(depth_scale=8000.0, **kw)[0]["image"][3]
    assert set(metric[:, :4].unique().tolist()) == {32} and set(metric[:, 4:].unique().tolist()) == {64}


def test_8_bit_depth_keeps_its_values(tmp_path: Path) -> None:
    _rgb(tmp_path / "rgb" / "x.png", (0, 0, 0), size=(8, 8))
    (tmp_path / "depth").mkdir()
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "depth" / "x.png")
    ds = PairedFolderDataset(rgb_dir=str(tmp_path / "rgb"), depth_dir=str(tmp_path / "depth"), image_size=4)
    assert set(ds[0]["image"][3].unique().tolist()) == {77}


def test_missing_partners_are_listed(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["s0", "s1", "s2", "s3", "s4", "s5"])
    for name in ("s1", "s2", "s4", "s5"):
        (Path(params["depth_dir"]) / f"{name}.tif").unlink()
    with pytest.raises(InvalidParameter) as info:
        PairedFolderDataset(**params)
    message = str(info.value)
    assert message.startswith("depth_dir: no depth image for 4 of 6 RGB images (s1, s2, s4 and 1 more); ")
    assert "same name" in message and params["depth_dir"] in message


def test_missing_normals_are_listed(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["a", "b"])
    (Path(params["normals_dir"]) / "b.png").unlink()
    with pytest.raises(InvalidParameter, match=r"^normals_dir: no normals image for 1 of 2 RGB images \(b\)"):
        PairedFolderDataset(**params)


def test_extra_depth_files_are_ignored(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["a", "b"])
    _depth16(Path(params["depth_dir"]) / "orphan.png", np.ones((4, 4)))
    assert PairedFolderDataset(**params).keys == ("a", "b")


def test_duplicate_names_in_one_folder(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["a"])
    _depth16(Path(params["depth_dir"]) / "a.png", np.ones((4, 4)))
    with pytest.raises(InvalidParameter, match=r"^depth_dir: two images share the name 'a'"):
        PairedFolderDataset(**params)


def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["office/1", "kitchen/1", "kitchen/2"])
    ds = PairedFolderDataset(**params)
    check_dataset(ds)
    assert ds.label_keys == ("class",) and ds.classes == ("kitchen", "office")
    assert ds.keys == ("kitchen/1", "kitchen/2", "office/1")
    assert [int(ds[i]["class"]) for i in range(3)] == [0, 0, 1]
    # RGB red channel encodes the scene's position in ``names``: kitchen/1 was written second.
    assert int(ds[0]["image"][0, 2, 2]) == 1


def test_test_split_folders(tmp_path: Path) -> None:
    train = _scene(tmp_path / "train", ["a", "b"], normals=False)
    test = _scene(tmp_path / "test", ["c"], normals=False)
    kw = {**train, "test_rgb_dir": test["rgb_dir"], "test_depth_dir": test["depth_dir"]}
    assert PairedFolderDataset(split="test", **kw).keys == ("c",)
    assert PairedFolderDataset(split="train", **kw).keys == ("a", "b")
    assert PairedFolderDataset(split="test", **train).keys == ("a", "b")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"depth_scale": 0.0}, "depth_scale"),
        ({"image_size": 0}, "image_size"),
        ({"test_rgb_dir": "x"}, "test_depth_dir"),
        ({"test_normals_dir": "x"}, "test_normals_dir"),
        ({"split": "val"}, "split"),
    ],
)
def test_bad_parameters(tmp_path: Path, extra: dict, param: str) -> None:
    params = _scene(tmp_path, ["a"], normals=False)
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        PairedFolderDataset(**{**params, **extra})


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    params = _scene(tmp_path, ["a"], normals=False)
    with pytest.raises(InvalidParameter, match="^depth_dir: folder not found; check the path"):
        PairedFolderDataset(**{**params, "depth_dir": str(tmp_path / "nope")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameter, match=r"^rgb_dir: no image files \(\.jpg"):
        PairedFolderDataset(**{**params, "rgb_dir": str(tmp_path / "empty")})


def test_recipe_values_fit_the_signature(tmp_path: Path) -> None:
    params = PairedFolderDataset.contract_params_for(tmp_path)
    kwargs = validate_params(
        PairedFolderDataset, {**params, "depth_scale": 5000, "extensions": ["png", "jpg"]},
        kind="datasets", name="paired-folder", table="data", injected={"split": "train"},
    )
    check_dataset(PairedFolderDataset(**kwargs))


def test_contract_params(tmp_path: Path) -> None:
    ds = PairedFolderDataset(**PairedFolderDataset.contract_params_for(tmp_path), split="train")
    check_dataset(ds)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 7, 16, 16)


def test_corrupt_depth_file_is_named(tmp_path: Path) -> None:
    from contrastkit.errors import ContrastkitError

    params = _scene(tmp_path, ["a", "b"], normals=False)
    bad = Path(params["depth_dir"]) / "b.tif"
    bad.write_bytes(b"junk")
    ds = PairedFolderDataset(**params)
    ds[0]
    with pytest.raises(ContrastkitError, match=r"b\.tif: cannot decode image \(.*\); remove or replace the file$"):
        ds[1]
    with pytest.raises(ContrastkitError, match=r"b\.tif: cannot decode image"):
        ds.verify()
