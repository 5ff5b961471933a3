"""Flow estimators: OpenCV recovers a known translation; RAFT loads user weights and keeps shapes; precomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.views.optical_flow import (
    FlowEstimator,
    OpenCVFlow,
    RaftFlow,
    check_frames,
    precomputed_flow,
    to_gray_uint8,
)


def translated_pair(dx: int, dy: int, *, size: int = 64, batch: int = 2, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random texture and the same texture moved by ``(dx, dy)`` pixels: ``next[y + dy, x + dx] = first[y, x]``."""
    generator = torch.Generator().manual_seed(dx * 31 + dy)
    margin = 8
    noise = torch.rand(batch, channels, (size + 2 * margin) // 4, (size + 2 * margin) // 4, generator=generator)
    texture = F.interpolate(noise, size=(size + 2 * margin,) * 2, mode="bicubic", align_corners=False)
    lo, hi = texture.amin(dim=(1, 2, 3), keepdim=True), texture.amax(dim=(1, 2, 3), keepdim=True)
    texture = (texture - lo) / (hi - lo)
    first = texture[..., margin : margin + size, margin : margin + size]
    second = texture[..., margin - dy : margin - dy + size, margin - dx : margin - dx + size]
    return first.contiguous(), second.contiguous()


def test_the_test_pair_is_translated_as_stated() -> None:
    first, second = translated_pair(3, -2)
    assert torch.equal(second[..., 10 - 2, 10 + 3], first[..., 10, 10])


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-2, 1), (0, 4)])
def test_opencv_recovers_a_known_translation(method: str, dx: int, dy: int) -> None:
    first, second = translated_pair(dx, dy)
    flow = OpenCVFlow(method=method).estimate(first, second)
    assert flow.shape == (2, 2, 64, 64) and flow.dtype == torch.float32
    interior = flow[..., 8:-8, 8:-8].flatten(2).median(dim=2).values  # [B, 2]
    expected = torch.tensor([float(dx), float(dy)]).expand_as(interior)
    assert torch.allclose(interior, expected, atol=0.25), interior


def test_opencv_takes_grey_and_uint8_frames() -> None:
    first, second = translated_pair(2, 1, channels=1, batch=1)
    flow = OpenCVFlow(method="dis", dis_preset="fast").estimate((first * 255).round().to(torch.uint8), (second * 255).round().to(torch.uint8))
    median = flow[..., 8:-8, 8:-8].flatten(2).median(dim=2).values[0]
    assert torch.allclose(median, torch.tensor([2.0, 1.0]), atol=0.25)


def test_gray_conversion_matches_bt601() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    reference = np.rint((0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).numpy() * 255.0)
    got = to_gray_uint8(rgb)
    assert got.dtype == np.uint8 and got.shape == (2, 5, 6)
    assert np.abs(got.astype(np.int64) - reference.astype(np.int64)).max() <= 1


def test_estimators_follow_the_protocol_and_check_frames() -> None:
    assert isinstance(OpenCVFlow(), FlowEstimator)
    with pytest.raises(ShapeError, match="same shape"):
        check_frames(torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ShapeError, match=r"\[B, 1 or 3, H, W\]"):
        OpenCVFlow().estimate(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(InvalidParameter, match="method"):
        OpenCVFlow(method="lk")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="dis_preset"):
        OpenCVFlow(dis_preset="slow")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="farneback_winsize: must be >= 1"):
        OpenCVFlow(method="farneback", farneback_winsize=0)


@pytest.fixture(scope="module")
def raft_small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small.pt"
    torch.save(raft_small(weights=None).state_dict(), path)
    return path


def test_raft_loads_the_file_and_keeps_the_frames_shape(raft_small_weights: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    raft = RaftFlow(weights_path=str(raft_small_weights), num_flow_updates=1)
    reference = raft_small(weights=None).state_dict()
    saved = torch.load(raft_small_weights, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in raft.model.state_dict().items())
    assert any(not torch.equal(v, reference[k]) for k, v in saved.items() if v.is_floating_point())  # really loaded
    frames = torch.rand(1, 1, 20, 21)  # grey; enlarged to >= 128 pixels and padded to multiples of 8 inside
    flow = raft.estimate(frames, frames.roll(1, dims=-1))
    assert flow.shape == (1, 2, 20, 21) and flow.dtype == torch.float32 and flow.device == frames.device
    assert bool(torch.isfinite(flow).all())


def test_raft_is_frozen_and_stays_in_eval_mode(raft_small_weights: Path) -> None:
    raft = RaftFlow(weights_path=str(raft_small_weights)).train()
    assert raft.training and not raft.model.training
    assert not any(p.requires_grad for p in raft.parameters())


def test_raft_reads_safetensors(raft_small_weights: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "raft.safetensors"
    save_file(torch.load(raft_small_weights, weights_only=True), str(path))
    assert RaftFlow(weights_path=str(path)).small


def test_raft_file_errors(raft_small_weights: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(InvalidParameter, match=rf"weights_path: no such file.*Raft_Small_Weights.*{missing.name}"):
        RaftFlow(weights_path=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidParameter, match="weights_path: not a readable RAFT state_dict"):
        RaftFlow(weights_path=str(garbage))
    with pytest.raises(InvalidParameter, match=r"does not fit raft_large.*set small = true"):
        RaftFlow(weights_path=str(raft_small_weights), small=False)
    with pytest.raises(InvalidParameter, match="num_flow_updates"):
        RaftFlow(weights_path=str(raft_small_weights), num_flow_updates=0)


def test_precomputed_flow() -> None:
    flow = torch.randn(2, 2, 8, 8)
    assert precomputed_flow({"image": torch.rand(2, 3, 8, 8), "flow": flow}) is flow
    with pytest.raises(ShapeError, match=r"no 'flow'.*data.sequence = true"):
        precomputed_flow({"image": torch.rand(2, 3, 8, 8)})
    with pytest.raises(ShapeError, match=r"expected float \(2, 2, 8, 8\)"):
        precomputed_flow({"image": torch.rand(2, 3, 8, 8), "flow": torch.rand(2, 3, 8, 8)})
    with pytest.raises(ShapeError, match="expected float"):
        precomputed_flow({"image": torch.rand(2, 3, 8, 8), "flow": torch.zeros(2, 2, 8, 8, dtype=torch.int64)})
