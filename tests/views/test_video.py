"""``video`` views: contract, view subsets, flow sources and scaling, eval mode, flow-aware crop/flip, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.pipeline import Pipeline
from contrastkit.testing import check_view_maker
from contrastkit.views.optical_flow import OpenCVFlow, RaftFlow
from contrastkit.views.video import FlowCropFlip, VideoViews


def _texture(batch: int, size: int, *, channels: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, channels, size // 4, size // 4, generator=generator, dtype=torch.float64)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)


def _recording_augment(calls: list[int]):
    def augment(images: torch.Tensor, view: int) -> torch.Tensor:
        calls.append(view)
        return images + 10.0 * (view + 1)  # marks which view's augmentation ran

    return augment


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"flow": "opencv-farneback"},
        {"views": ["flow", "frame"]},
        {"views": ["frame", "next_frame"]},
        {"views": ["next_frame", "frame", "flow"], "flow_crop_scale": (1.0, 1.0), "flow_flip_p": 0.0},
    ],
)
def test_contract(params: dict) -> None:
    torch.manual_seed(0)
    check_view_maker(VideoViews(**params))


@pytest.mark.parametrize(
    ("views", "channels", "expected"),
    [
        (None, 3, (3, 3, 2)),
        (["frame", "flow"], 3, (3, 2)),
        (["flow", "next_frame"], 1, (2, 1)),
        (["next_frame", "frame"], 1, (1, 1)),
    ],
)
def test_view_channels(views, channels: int, expected: tuple[int, ...]) -> None:
    maker = VideoViews(views=views, channels=channels, flow="precomputed")
    assert maker.view_channels == expected
    batch = {
        "image": torch.rand(2, channels, 8, 8),
        "next_image": torch.rand(2, channels, 8, 8),
        "flow": torch.rand(2, 2, 8, 8),
    }
    assert [v.shape[1] for v in maker(batch, lambda x, view: x)] == list(expected)


@pytest.mark.parametrize(
    ("views", "flow", "expected"),
    [
        (["frame", "next_frame", "flow"], "opencv-dis", ("next_image",)),
        (["frame", "flow"], "opencv-farneback", ("next_image",)),
        (["frame", "flow"], "precomputed", ("flow",)),
        (["next_frame", "flow"], "precomputed", ("next_image", "flow")),
        (["frame", "next_frame"], "precomputed", ("next_image",)),
    ],
)
def test_required_keys(views, flow, expected) -> None:
    assert VideoViews(views=views, flow=flow).required_keys == expected


def test_training_views_and_augmentation_indices() -> None:
    torch.manual_seed(0)
    image, nxt, flow = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.randn(2, 2, 8, 8)
    maker = VideoViews(views=["next_frame", "flow", "frame"], flow="precomputed", flow_scale=2.0,
                       flow_crop_scale=(1.0, 1.0), flow_flip_p=0.0)
    calls: list[int] = []
    v_next, v_flow, v_frame = maker({"image": image, "next_image": nxt, "flow": flow}, _recording_augment(calls))
    assert calls == [0, 2]  # the flow view never goes through the recipe
    assert torch.equal(v_next, nxt + 10.0) and torch.equal(v_frame, image + 30.0)
    assert torch.allclose(v_flow, flow / 2.0)


def test_flow_view_is_the_precomputed_flow_over_flow_scale_in_eval() -> None:
    image, nxt, flow = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.randn(2, 2, 8, 8) * 5
    maker = VideoViews(views=["frame", "next_frame", "flow"], flow="precomputed", flow_scale=5.0).eval()
    calls: list[int] = []
    v_frame, v_next, v_flow = maker({"image": image, "next_image": nxt, "flow": flow}, _recording_augment(calls))
    assert torch.allclose(v_flow, flow / 5.0)  # eval: no crop or flip, even with the default flow augmentation
    assert torch.equal(v_frame, image + 10.0) and torch.equal(v_next, image + 20.0)  # eval: both are frame t


def test_estimated_flow_is_from_the_unaugmented_frames() -> None:
    torch.manual_seed(0)
    first = _texture(2, 48, channels=3, seed=1).float()
    second = first.roll(shifts=(1, 2), dims=(-2, -1))  # dx = 2, dy = 1 (wrapping only at the border)
    maker = VideoViews(views=["frame", "flow"], flow="opencv-farneback", flow_scale=2.0,
                       flow_crop_scale=(1.0, 1.0), flow_flip_p=0.0)
    _, flow = maker({"image": first, "next_image": second}, lambda x, view: x.flip(-1) * 0.5)
    median = flow[..., 8:-8, 8:-8].flatten(2).median(dim=2).values
    assert torch.allclose(median, torch.tensor([[1.0, 0.5], [1.0, 0.5]]), atol=0.1)


def test_uint8_next_image_is_converted() -> None:
    image = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    maker = VideoViews(views=["frame", "next_frame"])
    frame, nxt = maker({"image": image.float() / 255, "next_image": image}, lambda x, view: x)
    assert nxt.dtype == torch.float32 and torch.allclose(nxt, frame)


def test_flow_crop_flip_moves_vectors_with_the_pixels() -> None:
    """After the same crop and flip of both frames, the transformed flow still maps frame t onto frame t+k."""
    torch.manual_seed(3)
    size, margin, dx, dy = 48, 8, 3, -2
    texture = _texture(6, size + 2 * margin)
    first = texture[..., margin : margin + size, margin : margin + size]
    second = texture[..., margin - dy : margin - dy + size, margin - dx : margin - dx + size]
    flow = torch.tensor([dx, dy], dtype=torch.float64).view(1, 2, 1, 1).expand(6, 2, size, size)
    new_flow, frames = FlowCropFlip(scale=(0.3, 0.6)).transform(flow, torch.cat([first, second], dim=1))
    assert frames is not None
    first_out, second_out = frames[:, :1], frames[:, 1:]

    def warp(image: torch.Tensor, by: torch.Tensor) -> torch.Tensor:  # image sampled at (x + dx, y + dy)
        ys, xs = torch.meshgrid(torch.arange(size, dtype=image.dtype), torch.arange(size, dtype=image.dtype), indexing="ij")
        grid = torch.stack([(xs + by[:, 0]) / (size - 1) * 2 - 1, (ys + by[:, 1]) / (size - 1) * 2 - 1], dim=-1)
        return F.grid_sample(image, grid, align_corners=True)

    inner = (..., slice(8, -8), slice(8, -8))
    error = (warp(second_out, new_flow) - first_out)[inner].abs().mean(dim=(1, 2, 3))
    untransformed = (warp(second_out, flow) - first_out)[inner].abs().mean(dim=(1, 2, 3))
    assert bool((error < 0.01).all()), error
    assert bool((untransformed > 4 * error).all()), (error, untransformed)  # zoom and flips did change the vectors


def test_flow_crop_flip_mirrors_exactly() -> None:
    flow = torch.randn(3, 2, 6, 7, dtype=torch.float64)
    flipped = FlowCropFlip(scale=(1.0, 1.0), flip_p=1.0)(flow)  # no crop, whatever the aspect ratio
    expected = torch.stack([-flow[:, 0].flip(-1), flow[:, 1].flip(-1)], dim=1)
    assert torch.allclose(flipped, expected, atol=1e-12)
    assert FlowCropFlip(scale=(1.0, 1.0), flip_p=0.0).is_identity and not FlowCropFlip(flip_p=0.0).is_identity


def test_default_training_flow_is_augmented() -> None:
    torch.manual_seed(0)
    flow = torch.randn(4, 2, 16, 16)
    maker = VideoViews(views=["frame", "flow"], flow="precomputed", flow_scale=1.0)
    _, trained = maker({"image": torch.rand(4, 3, 16, 16), "flow": flow}, lambda x, view: x)
    assert not torch.allclose(trained, flow)


def test_raft_source_and_its_errors(tmp_path: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    path = tmp_path / "raft_small.pt"
    torch.save(raft_small(weights=None).state_dict(), path)
    maker = VideoViews(views=["frame", "flow"], flow="raft", raft_weights=str(path))
    assert isinstance(maker.estimator, RaftFlow) and not any(p.requires_grad for p in maker.parameters())
    maker.estimator.num_flow_updates = 1  # random weights: only the plumbing is tested
    views = maker.eval()({"image": torch.rand(1, 3, 16, 16), "next_image": torch.rand(1, 3, 16, 16)}, lambda x, v: x)
    assert [tuple(v.shape) for v in views] == [(1, 3, 16, 16), (1, 2, 16, 16)]
    with pytest.raises(InvalidParameter, match=r"raft_weights: is required with flow = \"raft\""):
        VideoViews(flow="raft")
    with pytest.raises(InvalidParameter, match=r"raft_weights: no such file.*nope\.pt"):
        VideoViews(flow="raft", raft_weights=str(tmp_path / "nope.pt"))
    assert VideoViews(views=["frame", "next_frame"], flow="raft").estimator is None  # no flow view: no weights needed
    assert isinstance(VideoViews(flow="opencv-dis").estimator, OpenCVFlow)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"views": ["frame"]}, "views: must list 2 to 3 different views"),
        ({"views": ["frame", "frame"]}, "views: must list 2 to 3 different views"),
        ({"views": ["frame", "depth"]}, "views: unknown view .depth.; must list 2 to 3"),
        ({"flow": "lucas-kanade"}, "flow: must be one of"),
        ({"flow_scale": 0.0}, "flow_scale: must be > 0"),
        ({"flow_crop_scale": (0.5, 0.2)}, r"flow_crop_scale: must be \[min, max\]"),
        ({"flow_flip_p": 1.5}, "flow_flip_p: must be a probability"),
        ({"channels": 2}, "channels: must be 3"),
    ],
)
def test_parameter_errors(params: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        VideoViews(**params)


def test_batch_errors() -> None:
    with pytest.raises(ShapeError, match=r"no 'next_image'.*video-frames.*data.sequence = true"):
        VideoViews()({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    with pytest.raises(ShapeError, match=r"expected frames \[B, 3, H, W\].*set views.channels = 1"):
        VideoViews()({"image": torch.rand(2, 1, 8, 8), "next_image": torch.rand(2, 1, 8, 8)}, lambda x, view: x)
    with pytest.raises(ShapeError, match="'next_image' .* must have the same shape"):
        VideoViews(views=["frame", "next_frame"])(
            {"image": torch.rand(2, 3, 8, 8), "next_image": torch.rand(2, 3, 8, 6)}, lambda x, view: x
        )
    with pytest.raises(ShapeError, match="no 'flow'"):
        VideoViews(views=["frame", "flow"], flow="precomputed")({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)


def test_three_views_train_through_the_pipeline() -> None:
    torch.manual_seed(0)
    batch = {
        "image": torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8),
        "next_image": torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8),
        "flow": torch.randn(8, 2, 16, 16),
    }
    encoder = {"name": "convnet", "width": 4, "depth": 2}
    full = Pipeline(views=VideoViews(flow="precomputed"), encoder=encoder, graph="full")
    assert full.view_channels == (3, 3, 2) and full.pairs == [(0, 1), (0, 2), (1, 2)]
    pipe = Pipeline(views=VideoViews(flow="precomputed"), augment="crop-flip", encoder=encoder, graph="core")
    out = pipe(batch)
    assert torch.isfinite(out.loss) and len(out.views) == 3
    assert sorted(k for k in out.metrics if k.startswith("loss/")) == ["loss/v1-v2", "loss/v1-v3"]
    out.loss.backward()
    assert pipe.eval().features(batch).shape[0] == 8


def test_reads_video_frames_batches(tmp_path: Path) -> None:
    from contrastkit.datasets.video_frames import VideoFramesDataset

    dataset = VideoFramesDataset(split="train", **VideoFramesDataset.contract_params_for(tmp_path))
    maker = VideoViews()
    assert all(key in dataset[0] for key in maker.required_keys)
    pipe = Pipeline(data=dataset, views=maker, augment="crop-flip", encoder={"name": "convnet", "width": 4, "depth": 2})
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])  # uint8 frames
    out = pipe(batch)
    assert torch.isfinite(out.loss) and [tuple(v.shape) for v in out.views] == [(5, 3, 16, 16), (5, 3, 16, 16), (5, 2, 16, 16)]
