"""video-frames: every sample is frames (t, t + offset) of one clip; frames whose pixel value encodes t."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from PIL import Image

from contrastkit.datasets.video_frames import VideoFramesDataset
from contrastkit.errors import InvalidParameter
from contrastkit.factories import validate_params
from contrastkit.testing import check_dataset

if TYPE_CHECKING:
    import numpy as np


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


# -- precomputed flow ---------------------------------------------------------------------------------
def _flo_bytes(flow: np.ndarray) -> bytes:
    """Middlebury .flo written by hand: 'PIEH', int32 width, int32 height, (dx, dy) float32 per pixel, row-major."""
    import numpy as np

    height, width = flow.shape[1:]
    body = np.empty((height, width, 2), dtype="<f4")
    for y in range(height):
        for x in range(width):
            body[y, x, 0], body[y, x, 1] = flow[0, y, x], flow[1, y, x]
    return b"PIEH" + np.array([width, height], dtype="<i4").tobytes() + body.tobytes()


def _ramp_flows(flow_root: Path, lengths: dict[str, int], *, width: int = 14, height: int = 10, ext: str = ".flo",
                skip: tuple[str, ...] = ()) -> None:
    """Frame t of clip c (as `_clips`) gets the flow dx = column index, dy = 10 * c + t (constant)."""
    import numpy as np

    columns = np.tile(np.arange(width, dtype=np.float64), (height, 1))
    for c, (clip, length) in enumerate(lengths.items()):
        (flow_root / clip).mkdir(parents=True, exist_ok=True)
        for t in range(length):
            name = f"frame_{t}"
            if f"{clip}/{name}" in skip:
                continue
            flow = np.stack([columns, np.full((height, width), 10.0 * c + t)])
            if ext == ".flo":
                (flow_root / clip / f"{name}.flo").write_bytes(_flo_bytes(flow))
            elif ext == ".npy-hw2":
                np.save(flow_root / clip / f"{name}.npy", flow.transpose(1, 2, 0).astype(np.float32))
            else:
                np.save(flow_root / clip / f"{name}.npy", flow.astype(np.float64))


def test_read_flo_follows_the_middlebury_layout(tmp_path: Path) -> None:
    import numpy as np

    from contrastkit.datasets.flow_files import read_flo, write_flo

    flow = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    (tmp_path / "a.flo").write_bytes(_flo_bytes(flow))
    assert read_flo(tmp_path / "a.flo").dtype == np.float32
    assert np.array_equal(read_flo(tmp_path / "a.flo"), flow)
    write_flo(tmp_path / "b.flo", flow)
    assert (tmp_path / "b.flo").read_bytes() == _flo_bytes(flow)


def test_flow_is_cropped_like_the_frames_and_not_rescaled_at_full_size(tmp_path: Path) -> None:
    lengths = {"a": 3, "b": 2}
    _clips(tmp_path / "frames", lengths)  # 14x10 frames: the centred square is columns 2..11
    _ramp_flows(tmp_path / "flow", lengths)
    ds = VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"), image_size=10)
    check_dataset(ds, samples=len(ds))
    for i in range(len(ds)):
        item = ds[i]
        clip, t = _decode(item["image"])
        flow = item["flow"]
        assert flow.shape == (2, 10, 10) and flow.dtype == torch.float32
        assert torch.equal(flow[0], torch.arange(2, 12, dtype=torch.float32).expand(10, 10))
        assert torch.all(flow[1] == 10 * clip + t), f"sample {i}: flow of another frame"
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["flow"].shape == (3, 2, 10, 10) and batch["next_image"].shape == (3, 3, 10, 10)
    kwargs = validate_params(
        VideoFramesDataset, {"root": str(tmp_path / "frames"), "flow_root": str(tmp_path / "flow"), "image_size": 10},
        kind="datasets", name="video-frames", table="data", injected={"split": "train"},
    )
    VideoFramesDataset(**kwargs).verify(decode=True)


def test_flow_values_scale_with_the_resize(tmp_path: Path) -> None:
    lengths = {"a": 4}
    _clips(tmp_path / "frames", lengths)
    _ramp_flows(tmp_path / "flow", lengths, ext=".npy")
    ds = VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"), image_size=5, offset=2)
    assert len(ds) == 2
    factor = 5 / 10
    for i in range(len(ds)):
        flow = ds[i]["flow"].double()
        assert torch.allclose(flow[1], torch.full((5, 5), 1.0 * i * factor, dtype=torch.float64))
        # Output column u samples the crop at input column 2 + (u + 0.5) / factor - 0.5; on a linear ramp the
        # symmetric bilinear filter returns exactly that, away from the border where the filter is cut.
        for u in range(1, 4):
            expected = (2 + (u + 0.5) / factor - 0.5) * factor
            assert abs(float(flow[0, 2, u]) - expected) < 1e-5, f"sample {i}, column {u}"


def test_npy_channels_last_and_unknown_values(tmp_path: Path) -> None:
    import numpy as np

    from contrastkit.datasets.flow_files import read_flow

    _clips(tmp_path / "frames", {"a": 2})
    _ramp_flows(tmp_path / "flow", {"a": 2}, ext=".npy-hw2")
    ds = VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"), image_size=10)
    assert torch.equal(ds[0]["flow"][0, 0], torch.arange(2, 12, dtype=torch.float32))
    unknown = np.array([[[1.5, 1e10, np.inf]], [[np.nan, -2.0, 3.0]]], dtype=np.float32)
    (tmp_path / "u.flo").write_bytes(_flo_bytes(unknown))
    assert read_flow(tmp_path / "u.flo").tolist() == [[[1.5, 0.0, 0.0]], [[0.0, -2.0, 3.0]]]


def test_missing_flow_files_are_listed(tmp_path: Path) -> None:
    _clips(tmp_path / "frames", {"a": 5, "b": 3})
    _ramp_flows(tmp_path / "flow", {"a": 5}, skip=("a/frame_1", "a/frame_2"))  # and no folder for clip b
    with pytest.raises(InvalidParameter) as info:
        VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"))
    message = str(info.value)
    assert message.startswith("flow_root: no flow file for 4 of 6 frames (a/frame_1, a/frame_2, b/frame_0 and 1 more); ")
    assert "<clip>/<frame name>.flo or .npy" in message and "\n" not in message
    # The last `offset` frames of a clip start no pair: they need no flow.
    _ramp_flows(tmp_path / "flow", {"a": 4, "b": 2})
    assert len(VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"))) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PIEX" + bytes(8), r"not a Middlebury \.flo file \(it must start with the bytes 'PIEH'\)"),
        ("truncated", r"truncated or padded \.flo file: 164 bytes, 14x10 needs 1132"),
        ("small", r"flow is 12x10 but its frame frame_0\.png is 14x10; the flow must have its frame's size"),
    ],
)
def test_bad_flow_files_are_named(tmp_path: Path, content: bytes | str, message: str) -> None:
    import numpy as np

    from contrastkit.errors import ContrastkitError

    _clips(tmp_path / "frames", {"a": 2})
    (tmp_path / "flow" / "a").mkdir(parents=True)
    path = tmp_path / "flow" / "a" / "frame_0.flo"
    if content == "truncated":
        content = _flo_bytes(np.zeros((2, 10, 14)))[:164]
    elif content == "small":
        content = _flo_bytes(np.zeros((2, 10, 12)))
    path.write_bytes(content)
    ds = VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"), image_size=8)
    with pytest.raises(ContrastkitError, match=r"frame_0\.flo: " + message):
        ds[0]
    with pytest.raises(ContrastkitError, match=r"frame_0\.flo: " + message):
        ds.verify()


def test_bad_npy_shape_and_two_files_for_one_frame(tmp_path: Path) -> None:
    import numpy as np

    from contrastkit.errors import ContrastkitError

    _clips(tmp_path / "frames", {"a": 2})
    (tmp_path / "flow" / "a").mkdir(parents=True)
    np.save(tmp_path / "flow" / "a" / "frame_0.npy", np.zeros((3, 10, 14), np.float32))
    ds = VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"))
    with pytest.raises(ContrastkitError, match=r"frame_0\.npy: flow array has shape \[3, 10, 14\]; save it as"):
        ds[0]
    (tmp_path / "flow" / "a" / "frame_0.flo").write_bytes(_flo_bytes(np.zeros((2, 10, 14))))
    with pytest.raises(InvalidParameter, match=r"^flow_root: two flow files for frame a/frame_0 \(frame_0\.\w+, frame_0\.\w+\)"):
        VideoFramesDataset(root=str(tmp_path / "frames"), flow_root=str(tmp_path / "flow"))


def test_test_flow_root(tmp_path: Path) -> None:
    _clips(tmp_path / "train", {"a": 3})
    _clips(tmp_path / "test", {"x": 2, "y": 2})
    _ramp_flows(tmp_path / "flow_train", {"a": 3})
    _ramp_flows(tmp_path / "flow_test", {"x": 2, "y": 2})
    kw = {"root": str(tmp_path / "train"), "test_root": str(tmp_path / "test"), "image_size": 10,
          "flow_root": str(tmp_path / "flow_train"), "test_flow_root": str(tmp_path / "flow_test")}
    test = VideoFramesDataset(split="test", **kw)
    assert test.flow_root == tmp_path / "flow_test" and float(test[1]["flow"][1, 0, 0]) == 10.0  # clip y, t = 0
    assert VideoFramesDataset(split="train", **kw).flow_root == tmp_path / "flow_train"
    with pytest.raises(InvalidParameter, match="^test_flow_root: must be set exactly when flow_root is"):
        VideoFramesDataset(**{**kw, "test_flow_root": None})
    with pytest.raises(InvalidParameter, match="^test_flow_root: needs test_root"):
        VideoFramesDataset(**{**kw, "test_root": None})
    with pytest.raises(InvalidParameter, match="^flow_root: folder not found"):
        VideoFramesDataset(**{**kw, "flow_root": str(tmp_path / "nope")})
    assert "flow" not in VideoFramesDataset(root=kw["root"], image_size=10)[0]
