"""Optical-flow estimators for the ``video`` views: ``estimate(frame_t, frame_next) -> [B, 2, H, W]``.

Every estimator returns the flow from ``frame_t`` to ``frame_next`` in pixels, in OpenCV's
convention: channel 0 is ``dx`` (+right), channel 1 is ``dy`` (+down), and
``frame_next[y + dy, x + dx] ~ frame_t[y, x]``. Frames are ``[B, C, H, W]`` with ``C`` 1 (grey) or 3
(RGB), float in [0, 1] (or uint8).

- :class:`OpenCVFlow`: DIS or Farneback from OpenCV. CPU only and one sample at a time by nature
  (the frames are copied to the host): for small data and for precomputing flow, not for large
  batches in the training step.
- :class:`RaftFlow`: torchvision's RAFT (small or large), weights read from a file the user gives
  (never downloaded), run batch-wise on the frames' device.
- :func:`precomputed_flow`: the dataset's own ``"flow"`` entry (``colorful-moving-digits`` with
  ``sequence = true`` provides it).

Example:
    >>> import torch
    >>> frames = torch.rand(2, 3, 16, 16)
    >>> OpenCVFlow(method="dis").estimate(frames, frames).shape
    torch.Size([2, 2, 16, 16])
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import Batch

__all__ = ["FlowEstimator", "OpenCVFlow", "RaftFlow", "check_frames", "precomputed_flow", "to_gray_uint8"]

# ITU-R BT.601 luma, the weights of cv2.cvtColor(..., COLOR_RGB2GRAY).
_LUMA = (0.299, 0.587, 0.114)
# torchvision's RAFT downsamples by 8 and then pools its correlation volume 3 more times: it refuses
# feature maps under 16 x 16, i.e. frames under 128 x 128 pixels.
_RAFT_MIN_SIDE = 128


@runtime_checkable
class FlowEstimator(Protocol):
    """What the ``video`` view maker calls: two frames ``[B, C, H, W]`` -> flow ``[B, 2, H, W]`` in pixels.

    Example:
        >>> import torch
        >>> class ZeroFlow:
        ...     def estimate(self, frame_t, frame_next):
        ...         return frame_t.new_zeros(frame_t.shape[0], 2, *frame_t.shape[-2:])
        >>> isinstance(ZeroFlow(), FlowEstimator), ZeroFlow().estimate(torch.rand(1, 3, 4, 4), None).shape
        (True, torch.Size([1, 2, 4, 4]))
    """

    def estimate(self, frame_t: Tensor, frame_next: Tensor) -> Tensor: ...


def check_frames(frame_t: Tensor, frame_next: Tensor, *, who: str = "optical flow") -> None:
    """Raise :class:`ShapeError` unless both frames are ``[B, 1 or 3, H, W]`` of the same shape.

    Example:
        >>> import torch
        >>> check_frames(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
        >>> check_frames(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 6))
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: optical flow: frame_t (2, 3, 8, 8) and frame_next (2, 3, 8, 6) must have the same shape [B, 1 or 3, H, W]
    """
    if frame_t.ndim != 4 or frame_t.shape[1] not in (1, 3) or frame_t.shape != frame_next.shape:
        raise ShapeError(
            f"{who}: frame_t {tuple(frame_t.shape)} and frame_next {tuple(frame_next.shape)} must have the "
            "same shape [B, 1 or 3, H, W]"
        )


def to_gray_uint8(frames: Tensor) -> np.ndarray:
    """Frames ``[B, 1 or 3, H, W]`` (float in [0, 1] or uint8) -> grey uint8 ``[B, H, W]`` on the host.

    RGB is weighted as ``cv2.cvtColor(..., COLOR_RGB2GRAY)`` does (BT.601 luma), batch-wise on the
    frames' device; one copy to the host follows.

    Example:
        >>> import torch
        >>> to_gray_uint8(torch.ones(1, 3, 2, 2)).tolist()
        [[[255, 255], [255, 255]]]
    """
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    x = torch.einsum("c,bchw->bhw", x.new_tensor(_LUMA), x) if x.shape[1] == 3 else x[:, 0]
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()


class OpenCVFlow:
    """Dense flow with OpenCV's DIS (``method="dis"``) or Farneback (``"farneback"``); no weights.

    Frames become grey uint8 and each sample is passed to ``cv2.DISOpticalFlow_create(preset).calc``
    or ``cv2.calcOpticalFlowFarneback`` in turn, on the CPU: this is per-sample host work by nature,
    meant for small data (a few thousand 64-pixel frames) and for precomputing flow, not for large
    batches in the training step (use :class:`RaftFlow` on a GPU, or precomputed flow, there). The
    result is moved back to the frames' device.

    ``dis_preset`` is DIS's speed/quality preset; ``farneback_levels``, ``farneback_winsize`` and
    ``farneback_iterations`` are Farneback's pyramid levels, averaging window and iterations per level
    (OpenCV's usual ``pyr_scale = 0.5``, ``poly_n = 5``, ``poly_sigma = 1.2``).

    Example:
        >>> import torch
        >>> frames = torch.rand(1, 1, 16, 16)
        >>> flow = OpenCVFlow(method="farneback").estimate(frames, frames)
        >>> flow.shape, flow.dtype
        (torch.Size([1, 2, 16, 16]), torch.float32)
    """

    def __init__(
        self,
        *,
        method: Literal["dis", "farneback"] = "dis",
        dis_preset: Literal["ultrafast", "fast", "medium"] = "medium",
        farneback_levels: int = 3,
        farneback_winsize: int = 15,
        farneback_iterations: int = 3,
    ) -> None:
        import cv2  # imported here: only OpenCV flow needs it

        if method not in ("dis", "farneback"):
            raise InvalidParameter("method", "must be 'dis' or 'farneback'", method)
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        if dis_preset not in presets:
            raise InvalidParameter("dis_preset", "must be 'ultrafast', 'fast' or 'medium'", dis_preset)
        for name, value, low in (
            ("farneback_levels", farneback_levels, 0),
            ("farneback_winsize", farneback_winsize, 1),
            ("farneback_iterations", farneback_iterations, 1),
        ):
            if value < low:
                raise InvalidParameter(name, f"must be >= {low}", value)
        self.method = method
        self.dis_preset = dis_preset
        self._preset = presets[dis_preset]
        self.farneback_levels = farneback_levels
        self.farneback_winsize = farneback_winsize
        self.farneback_iterations = farneback_iterations

    def estimate(self, frame_t: Tensor, frame_next: Tensor) -> Tensor:
        """Flow ``[B, 2, H, W]`` float32 from ``frame_t`` to ``frame_next``, on ``frame_t``'s device."""
        import cv2

        check_frames(frame_t, frame_next)
        first, second = to_gray_uint8(frame_t), to_gray_uint8(frame_next)
        # A new DIS object per call: OpenCV objects do not pickle or deep-copy, the view maker must.
        # DISOpticalFlow_create is OpenCV's factory function; cv2's stubs list only DISOpticalFlow.create.
        dis = cv2.DISOpticalFlow_create(self._preset) if self.method == "dis" else None  # type: ignore[attr-defined]
        flows = []
        for a, b in zip(first, second):  # OpenCV takes one image pair at a time
            if dis is not None:
                flows.append(dis.calc(a, b, None))
            else:
                flows.append(
                    cv2.calcOpticalFlowFarneback(
                        a, b, None, 0.5, self.farneback_levels, self.farneback_winsize,
                        self.farneback_iterations, 5, 1.2, 0,
                    )
                )
        flow = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)  # [B, H, W, 2] -> [B, 2, H, W]
        return flow.to(frame_t.device, non_blocking=True)

    def __repr__(self) -> str:
        detail = f"preset={self.dis_preset!r}" if self.method == "dis" else (
            f"levels={self.farneback_levels}, winsize={self.farneback_winsize}, iterations={self.farneback_iterations}"
        )
        return f"OpenCVFlow(method={self.method!r}, {detail})"


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"holds a {type(state).__name__}, not a state_dict")
    return state


class RaftFlow(nn.Module):
    """torchvision's RAFT (``raft_small`` or, with ``small=False``, ``raft_large``) with weights from a file.

    The network is built with ``weights=None`` and loaded from ``weights_path`` (a ``torch.save``'d
    state_dict or a ``.safetensors`` file, e.g. torchvision's ``Raft_Small_Weights.C_T_V2`` saved
    once by hand); nothing is downloaded. Frames are scaled to [-1, 1] (grey frames repeated to RGB),
    enlarged when a side is under 128 pixels (RAFT's minimum) and padded to multiples of 8 by
    replicating the border; the flow is cropped back, resized to the frames' size and its vectors
    rescaled to the frames' pixels. It runs on the frames' device under ``torch.no_grad()``, in
    float32 (autocast off), with ``num_flow_updates`` refinement steps. The weights are frozen and the
    network stays in ``eval()`` mode (its batch norm never sees training batches).

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from torchvision.models.optical_flow import raft_small
        >>> path = Path(tempfile.mkdtemp()) / "raft_small.pt"
        >>> torch.save(raft_small(weights=None).state_dict(), path)
        >>> raft = RaftFlow(weights_path=str(path), num_flow_updates=1)
        >>> raft.estimate(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 2, 16, 16])
        >>> RaftFlow(weights_path="missing.pt")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: weights_path: no such file; save torchvision's RAFT weights there (torch.save(Raft_Small_Weights.DEFAULT.get_state_dict(), path)) or fix the path (got 'missing.pt')
    """

    def __init__(self, *, weights_path: str, small: bool = True, num_flow_updates: int = 12) -> None:
        super().__init__()
        from torchvision.models.optical_flow import raft_large, raft_small

        if num_flow_updates < 1:
            raise InvalidParameter("num_flow_updates", "must be >= 1", num_flow_updates)
        weights_name = "Raft_Small_Weights" if small else "Raft_Large_Weights"
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise InvalidParameter(
                "weights_path",
                f"no such file; save torchvision's RAFT weights there (torch.save({weights_name}.DEFAULT."
                "get_state_dict(), path)) or fix the path",
                weights_path,
            )
        try:
            state = _read_state_dict(path)
        except (OSError, RuntimeError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidParameter("weights_path", f"not a readable RAFT state_dict ({reason[:120]})", weights_path) from None
        model = raft_small(weights=None) if small else raft_large(weights=None)
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
        if missing or unexpected or mismatched:
            other = "small = false (raft_large)" if small else "small = true (raft_small)"
            raise InvalidParameter(
                "weights_path",
                f"does not fit {'raft_small' if small else 'raft_large'}: {len(missing)} missing, {len(unexpected)} "
                f"unexpected and {len(mismatched)} mis-shaped tensors (e.g. {(missing + unexpected + mismatched)[0]!r}); "
                f"if it holds the other model, set {other}",
                weights_path,
            )
        model.load_state_dict(state)
        model.requires_grad_(False)  # a fixed estimator: never trained, never in an optimizer
        self.model = model.eval()
        self.small = small
        self.weights_path = weights_path
        self.num_flow_updates = num_flow_updates

    def train(self, mode: bool = True) -> RaftFlow:
        """Follow ``mode`` like any module, but keep RAFT itself in ``eval()`` mode.

        Example:
            >>> import tempfile, torch
            >>> from pathlib import Path
            >>> from torchvision.models.optical_flow import raft_small
            >>> path = Path(tempfile.mkdtemp()) / "r.pt"
            >>> torch.save(raft_small(weights=None).state_dict(), path)
            >>> RaftFlow(weights_path=str(path)).train().model.training
            False
        """
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def estimate(self, frame_t: Tensor, frame_next: Tensor) -> Tensor:
        """Flow ``[B, 2, H, W]`` float32 from ``frame_t`` to ``frame_next``, on the frames' device."""
        check_frames(frame_t, frame_next, who="optical flow (raft)")
        device = frame_t.device
        if next(self.model.parameters()).device != device:
            self.model.to(device)
        height, width = frame_t.shape[-2:]
        with torch.autocast(device_type=device.type, enabled=False):
            pair = torch.cat([frame_t, frame_next]).float()
            if frame_t.dtype == torch.uint8:
                pair = pair / 255.0
            pair = pair.expand(-1, 3, -1, -1) if pair.shape[1] == 1 else pair
            pair = pair * 2.0 - 1.0
            factor = max(1.0, _RAFT_MIN_SIDE / min(height, width))
            size = (math.ceil(height * factor), math.ceil(width * factor))
            if size != (height, width):
                pair = F.interpolate(pair, size=size, mode="bilinear", align_corners=False)
            pad_h, pad_w = (-size[0]) % 8, (-size[1]) % 8
            if pad_h or pad_w:
                pair = F.pad(pair, (0, pad_w, 0, pad_h), mode="replicate")
            first, second = pair.chunk(2)
            flow = self.model(first, second, num_flow_updates=self.num_flow_updates)[-1]
            flow = flow[..., : size[0], : size[1]]
            if size != (height, width):
                flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
                # Vectors were measured in the enlarged frame's pixels: shrink them to the frame's.
                flow = torch.cat([flow[:, :1] * (width / size[1]), flow[:, 1:] * (height / size[0])], dim=1)
        return flow

    def extra_repr(self) -> str:
        return f"small={self.small}, weights_path={self.weights_path!r}, num_flow_updates={self.num_flow_updates}"


def precomputed_flow(batch: Batch) -> Tensor:
    """The batch's ``"flow"`` ``[B, 2, H, W]`` (pixels, OpenCV convention), checked against ``"image"``.

    Example:
        >>> import torch
        >>> batch = {"image": torch.rand(2, 3, 8, 8), "flow": torch.zeros(2, 2, 8, 8)}
        >>> precomputed_flow(batch).shape
        torch.Size([2, 2, 8, 8])
        >>> precomputed_flow({"image": torch.rand(2, 3, 8, 8)})
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: views.flow = "precomputed": the batch has no 'flow'; use a dataset that provides it (colorful-moving-digits with data.sequence = true) or estimate it (flow = "opencv-dis" or "raft")
    """
    flow = batch.get("flow")
    if flow is None:
        raise ShapeError(
            "views.flow = \"precomputed\": the batch has no 'flow'; use a dataset that provides it "
            "(colorful-moving-digits with data.sequence = true) or estimate it (flow = \"opencv-dis\" or \"raft\")"
        )
    image = batch["image"]
    expected = (image.shape[0], 2, *image.shape[-2:])
    if tuple(flow.shape) != expected or not flow.is_floating_point():
        raise ShapeError(
            f"views.flow = \"precomputed\": the batch's 'flow' is {flow.dtype} {tuple(flow.shape)}, expected float "
            f"{expected} ([B, 2, H, W] pixels, dx then dy, matching 'image')"
        )
    return flow
