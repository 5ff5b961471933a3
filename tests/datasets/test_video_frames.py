"""video-frames: every sample is frames (t, t + offset) of one clip; frames whose pixel value encodes t."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from contrastkit.datasets.video_frames import VideoFramesDataset
from contrastkit.errors import InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset


def _clips(root: Path, lengths: dict[str, int], *, pad: bool = False) -> None:
    """Frame ``t`` of clip number ``c`` (in ``lengths`` order) has red = 10 * t and green = 40 * c."""
    for c, (clip, length) in enumerate(lengths.items()):
        (root / clip).mkdir(parents=True, exist_ok=True)
        for t in range(length):
            name = f"frame_{t:03d}.png" if pad else f"frame_{t}.png"  # unpadded: 10 must sort after 9
            Image.new("RGB", (14, 10), (10 * t, 40 * c, 0)).save(root / clip / name)


def _decode(image: torch.Tensor) -> tuple[int, int]:
    """(clip number, t) from a frame's centre pixel."""
    return int(image[1, 4, 4]) // 40, int(image[0, 4, 4]) // 10


@pytest.mark.parametrize("offset", [1, 3])
def test_samples_are_every_pair_t_t_plus_offset(tmp_path: Path, offset: int) -> None:
    lengths = {"c0": 12, "c1": 4, "c2": 2}
    _clips(tmp_path, lengths)
    ds = VideoFramesDataset(split="train", root=str(tmp_path), offset=offset, image_size=8)
    check_dataset(ds, samples=len(ds))
    expected = {(c, t) for c, n in enumerate(lengths.values()) for t in range(n - offset)}
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        clip, t = _decode(item["image"])
        next_clip, next_t = _decode(item["next_image"])
        assert (next_clip, next_t) == (clip, t + offset), f"sample {i}: frames ({clip}, {t}) and ({next_clip}, {next_t})"
        assert int(item["clip"]) == clip and item["clip"].dtype == torch.int64
        assert int(item["index"]) == i
        seen.add((clip, t))
    assert seen == expected and len(ds) == len(expected)


def test_frames_sort_by_number_and_samples_follow_clip_order(tmp_path: Path) -> None:
    _clips(tmp_path, {"a": 11, "b": 3})
    ds = VideoFramesDataset(split="train", root=str(tmp_path), image_size=8)
    order = [_decode(ds[i]["image"]) for i in range(len(ds))]
    assert order == [(0, t) for t in range(10)] + [(1, 0), (1, 1)]
    assert [Path(p).name for p in ds.frame_paths(9)] == ["frame_9.png", "frame_10.png"]
    assert ds.clips == ("a", "b")


def test_gray_and_shapes_batch(tmp_path: Path) -> None:
    _clips(tmp_path, {"a": 3}, pad=True)
    ds = VideoFramesDataset(split="train", root=str(tmp_path), image_size=6, channels="gray")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == batch["next_image"].shape == (2, 1, 6, 6)
    assert batch["clip"].tolist() == [0, 0]


def test_short_clips_and_empty_folders_are_skipped(tmp_path: Path) -> None:
    _clips(tmp_path, {"long": 3, "short": 1})
    (tmp_path / "empty").mkdir()
    (tmp_path / "stray.png").write_bytes(b"")  # a file at the top level is not a clip
    ds = VideoFramesDataset(split="train", root=str(tmp_path), image_size=8)
    assert len(ds) == 2 and ds.clips == ("long", "short")


def test_offset_longer_than_every_clip(tmp_path: Path) -> None:
    _clips(tmp_path, {"a": 3, "b": 2})
    with pytest.raises(InvalidParameter) as info:
        VideoFramesDataset(split="train", root=str(tmp_path), offset=3)
    assert str(info.value) == "offset: no clip has more than 3 frames (the longest has 3); lower offset or add frames (got 3)"


def test_no_clip_folders(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "frame_0.png")
    with pytest.raises(InvalidParameter, match=r"^root: no clip folders with frame images \(\.jpg, .*own subfolder"):
        VideoFramesDataset(split="train", root=str(tmp_path))


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="^root: folder not found; check the path"):
        VideoFramesDataset(split="train", root=str(tmp_path / "nope"))


def test_test_root(tmp_path: Path) -> None:
    _clips(tmp_path / "train", {"a": 3})
    _clips(tmp_path / "test", {"x": 2, "y": 2})
    kw = {"root": str(tmp_path / "train"), "test_root": str(tmp_path / "test")}
    assert VideoFramesDataset(split="test", **kw).clips == ("x", "y")
    assert VideoFramesDataset(split="train", **kw).clips == ("a",)
    assert VideoFramesDataset(split="test", root=kw["root"]).clips == ("a",)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"offset": 0}, "offset"), ({"image_size": 0}, "image_size"), ({"channels": "bgr"}, "channels"), ({"split": "val"}, "split")],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, param: str) -> None:
    _clips(tmp_path, {"a": 3})
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        VideoFramesDataset(**{"root": str(tmp_path), **kwargs})


def test_recipe_values_fit_the_signature(tmp_path: Path) -> None:
    params = VideoFramesDataset.contract_params_for(tmp_path)
    kwargs = validate_params(
        VideoFramesDataset, {**params, "offset": 2, "extensions": ["png"]},
        kind="datasets", name="video-frames", table="data", injected={"split": "train"},
    )
    assert len(VideoFramesDataset(**kwargs)) == 3


def test_contract_params(tmp_path: Path) -> None:
    check_dataset(VideoFramesDataset(**VideoFramesDataset.contract_params_for(tmp_path), split="train"))


def test_corrupt_frame_is_named(tmp_path: Path) -> None:
    from contrastkit.errors import ContrastkitError

    _clips(tmp_path, {"a": 3})
    (tmp_path / "a" / "frame_2.png").write_bytes(b"junk")
    ds = VideoFramesDataset(split="train", root=str(tmp_path), image_size=8)
    ds[0]
    with pytest.raises(ContrastkitError, match=r"frame_2\.png: cannot decode image"):
        ds[1]
    with pytest.raises(ContrastkitError, match=r"frame_2\.png: cannot decode image"):
        ds.verify()
