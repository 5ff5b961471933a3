"""``video``: CMC's video views — frame ``t``, frame ``t + k`` and the optical flow between them.

CMC (seed 001, "Videos") contrasts frame ``i_t`` with a neighbouring frame ``i_{t+k}`` (the
*ventral* stream: what is there) and with the optical flow ``f_t`` (the *dorsal* stream: how it
moves). ``views`` picks any two or three of ``"frame"``, ``"next_frame"`` and ``"flow"``, in that
order of the list; with ``["frame", "next_frame", "flow"]`` and ``graph = "core"`` the frame is the
core view of both streams (CMC's V+D).

Inputs (the video batch contract): ``"image"`` frame ``t`` ``[B, C, H, W]``, ``"next_image"`` frame
``t + k`` of the same shape, and with ``flow = "precomputed"`` the dataset's ``"flow"``
``[B, 2, H, W]``, in pixels, dx then dy (OpenCV's convention). ``flow`` picks where the flow comes
from: ``"opencv-dis"`` / ``"opencv-farneback"`` (CPU, per sample: small data only), ``"raft"``
(torchvision's RAFT on the device, weights from ``raft_weights``), ``"precomputed"``. See
:mod:`contrastkit.views.optical_flow`. The flow view has 2 channels, ``flow / flow_scale``.

Augmentation, so that the flow keeps meaning what it says:

- the flow is computed from the **un-augmented** frames (two frames cropped differently have no
  meaningful flow between them);
- each frame view goes through its own view's augmentation (``augment(images, i)``);
- the flow view ignores the augmentation recipe (a colour jitter of a flow field is meaningless, and
  a crop or flip must also rescale or mirror its vectors). In training it gets its own random
  resized crop (area fraction in ``flow_crop_scale``) and horizontal flip (``flow_flip_p``), with
  the vectors transformed along: see :class:`FlowCropFlip`. ``flow_crop_scale = [1.0, 1.0]`` and
  ``flow_flip_p = 0.0`` leave it as computed.

In ``eval()`` mode (probes, feature export) a sample is frame ``t``: every frame view is ``"image"``
(as ``image-pair`` does), so each frame encoder describes the frame the labels belong to, and the
flow view is the sample's flow, un-augmented.

Example:
    >>> import torch
    >>> maker = VideoViews(views=["frame", "flow"], flow="precomputed", flow_scale=2.0)
    >>> maker.view_channels, maker.required_keys
    ((3, 2), ('flow',))
    >>> batch = {"image": torch.rand(2, 3, 8, 8), "flow": torch.ones(2, 2, 8, 8)}
    >>> frame, flow = maker.eval()(batch, lambda x, view: x)
    >>> float(flow.mean())
    0.5
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from contrastkit.augmentations.basic import CropFlip
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch
from contrastkit.views._checks import check_view_names
from contrastkit.views.optical_flow import FlowEstimator, OpenCVFlow, RaftFlow, precomputed_flow

__all__ = ["FlowCropFlip", "VideoViews"]

ViewName = Literal["frame", "next_frame", "flow"]
FlowSource = Literal["opencv-dis", "opencv-farneback", "raft", "precomputed"]

_VIEW_NAMES = ("frame", "next_frame", "flow")
_FLOW_SOURCES = ("opencv-dis", "opencv-farneback", "raft", "precomputed")
_DEFAULT_VIEWS: list[ViewName] = ["frame", "next_frame", "flow"]


class FlowCropFlip(CropFlip):
    """Random resized crop and horizontal flip of a flow field ``[B, 2, H, W]``, vectors included.

    The parameters are :class:`~contrastkit.augmentations.basic.CropFlip`'s. Kornia draws the crop
    (area fraction in ``scale``, aspect ratio in ``ratio``, resized back to ``H x W``) and the flip per
    sample; the field is resampled at the new pixels and each vector is multiplied by the linear part
    of the sample's transform (``transform_matrix``): a crop zoomed ``s`` times makes displacements
    ``s`` times longer, a flip negates ``dx``. ``scale = (1, 1)`` means no crop (only the flip).

    Example:
        >>> import torch
        >>> flip = FlowCropFlip(scale=(1.0, 1.0), flip_p=1.0)
        >>> flow = torch.stack([torch.full((4, 4), 2.0), torch.full((4, 4), 1.0)])[None]
        >>> flip(flow)[0, :, 0, 0].tolist()
        [-2.0, 1.0]
    """

    @property
    def is_identity(self) -> bool:
        """Whether it never changes a field: ``scale = (1, 1)`` (no crop) and ``flip_p = 0``."""
        return self.scale == (1.0, 1.0) and self.flip_p == 0.0

    @functools.cached_property
    def _sequences(self) -> dict[tuple[int, int], K.AugmentationSequential]:
        # Kornia's crop needs its output size up front: one sequence per field size, built on first use.
        return {}

    def _sequence(self, size: tuple[int, int]) -> K.AugmentationSequential:
        if size not in self._sequences:
            steps: list[K.GeometricAugmentationBase2D] = []
            if self.scale != (1.0, 1.0):  # a full-area crop keeps the whole field, whatever the ratio
                steps.append(K.RandomResizedCrop(size=size, scale=self.scale, ratio=self.ratio))
            steps.append(K.RandomHorizontalFlip(p=self.flip_p))
            self._sequences[size] = K.AugmentationSequential(*steps)
        return self._sequences[size]

    def transform(self, flow: Tensor, images: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Crop and flip ``flow`` ``[B, 2, H, W]`` and, with the same draws, ``images`` ``[B, C, H, W]``.

        Example:
            >>> import torch
            >>> flow, images = FlowCropFlip().transform(torch.zeros(2, 2, 8, 8), torch.rand(2, 3, 8, 8))
            >>> flow.shape, images.shape
            (torch.Size([2, 2, 8, 8]), torch.Size([2, 3, 8, 8]))
        """
        if flow.ndim != 4 or flow.shape[1] != 2:
            raise ShapeError(f"views.video: expected a flow field [B, 2, H, W], got {tuple(flow.shape)}")
        stacked = flow if images is None else torch.cat([flow, images.to(flow.dtype)], dim=1)
        sequence = self._sequence((flow.shape[-2], flow.shape[-1]))
        moved = sequence(stacked)
        matrix = sequence.transform_matrix
        assert matrix is not None  # set by the call above
        linear = matrix[:, :2, :2].to(moved.dtype)  # source -> output pixels, per sample
        vectors = torch.einsum("bij,bjhw->bihw", linear, moved[:, :2])
        return vectors, (None if images is None else moved[:, 2:])

    def forward(self, flow: Tensor) -> Tensor:
        """``[B, 2, H, W] -> [B, 2, H, W]``, fresh random crop and flip per sample."""
        return self.transform(flow)[0]

    def extra_repr(self) -> str:
        return f"scale={self.scale}, ratio={self.ratio}, flip_p={self.flip_p}"


def _as_float(images: Tensor) -> Tensor:
    # The pipeline converts uint8 "image*" entries; "next_image" may still arrive as uint8.
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


class VideoViews(nn.Module):
    """Views ``views`` (from frame, next frame, flow) of a video batch; see the module docstring.

    Channels: a frame view has ``channels`` (3 for RGB, 1 for ``video-frames`` with
    ``channels = "gray"``), the flow view 2. ``required_keys`` lists the batch entries read besides
    ``"image"`` (``"next_image"``, and ``"flow"`` with ``flow = "precomputed"``), so training checks
    the dataset before the first step.

    Example:
        >>> import torch
        >>> maker = VideoViews(flow="opencv-farneback")
        >>> maker.view_channels, maker.required_keys
        ((3, 3, 2), ('next_image',))
        >>> batch = {"image": torch.rand(2, 3, 16, 16), "next_image": torch.rand(2, 3, 16, 16)}
        >>> [tuple(v.shape) for v in maker(batch, lambda x, view: x)]
        [(2, 3, 16, 16), (2, 3, 16, 16), (2, 2, 16, 16)]
    """

    contrast_sign = 1.0
    #: The datasets that provide ``required_keys``, for the trainer's message when a dataset lacks them.
    required_keys_hint = "video-frames, or colorful-moving-digits with data.sequence = true"

    def __init__(
        self,
        *,
        views: list[ViewName] | None = None,
        flow: FlowSource = "opencv-dis",
        raft_weights: str | None = None,
        raft_small: bool = True,
        flow_scale: float = 4.0,
        flow_crop_scale: tuple[float, float] = (0.2, 1.0),
        flow_flip_p: float = 0.5,
        channels: int = 3,
    ) -> None:
        super().__init__()
        names = check_view_names(views if views is not None else list(_DEFAULT_VIEWS), tuple(_VIEW_NAMES))
        if flow not in _FLOW_SOURCES:
            raise InvalidParameter("flow", "must be one of " + ", ".join(map(repr, _FLOW_SOURCES)), flow)
        if not (math.isfinite(flow_scale) and flow_scale > 0):
            raise InvalidParameter("flow_scale", "must be > 0 (pixels of displacement that become 1.0)", flow_scale)
        if channels not in (1, 3):
            raise InvalidParameter("channels", "must be 3 (RGB frames) or 1 (grey frames)", channels)
        self.views = names
        self.flow = flow
        self.flow_scale = float(flow_scale)
        self.channels = channels
        try:
            self.flow_augment = FlowCropFlip(scale=flow_crop_scale, flip_p=flow_flip_p)
        except InvalidParameter as exc:
            name = {"scale": "flow_crop_scale", "flip_p": "flow_flip_p"}[exc.parameter]
            raise InvalidParameter(name, exc.problem, exc.got) from None
        uses_flow = "flow" in names
        self.estimator: FlowEstimator | None = None
        if uses_flow and flow == "raft":
            if raft_weights is None:
                raise InvalidParameter(
                    "raft_weights", "is required with flow = \"raft\": the path of a torchvision RAFT state_dict file"
                )
            try:
                self.estimator = RaftFlow(weights_path=raft_weights, small=raft_small)
            except InvalidParameter as exc:  # name the recipe's key, not RaftFlow's argument
                raise InvalidParameter("raft_weights", exc.problem, exc.got) from None
        elif uses_flow and flow.startswith("opencv-"):
            self.estimator = OpenCVFlow(method="dis" if flow == "opencv-dis" else "farneback")
        needs_next = "next_frame" in names or (uses_flow and flow != "precomputed")
        #: Batch entries this view maker reads besides ``image`` (checked against the dataset before training).
        self.required_keys: tuple[str, ...] = (("next_image",) if needs_next else ()) + (
            ("flow",) if uses_flow and flow == "precomputed" else ()
        )

    @property
    def view_channels(self) -> tuple[int, ...]:
        """``channels`` per frame view, 2 for the flow view, in the order of ``views``."""
        return tuple(2 if name == "flow" else self.channels for name in self.views)

    def flow_field(self, batch: Batch) -> Tensor:
        """The sample's flow ``[B, 2, H, W]`` divided by ``flow_scale`` (no augmentation).

        Example:
            >>> import torch
            >>> maker = VideoViews(views=["frame", "flow"], flow="precomputed", flow_scale=4.0)
            >>> maker.flow_field({"image": torch.rand(1, 3, 4, 4), "flow": torch.full((1, 2, 4, 4), 2.0)}).max().item()
            0.5
        """
        image = _as_float(batch["image"])
        if self.estimator is None:
            flow = precomputed_flow(batch)
        else:
            flow = self.estimator.estimate(image, self._next_frame(batch, image))
        return flow.to(image.dtype) / self.flow_scale

    def _next_frame(self, batch: Batch, image: Tensor) -> Tensor:
        nxt = batch.get("next_image")
        if nxt is None:
            raise ShapeError(
                "views.video: the batch has no 'next_image'; use a dataset of frame pairs (video-frames, or "
                "colorful-moving-digits with data.sequence = true)"
            )
        nxt = _as_float(nxt)
        if nxt.shape != image.shape:
            raise ShapeError(
                f"views.video: 'next_image' {tuple(nxt.shape)} and 'image' {tuple(image.shape)} must have the same shape"
            )
        return nxt

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """The video batch -> one view per entry of ``views``: frames ``[B, C, H', W']``, flow ``[B, 2, H, W]``."""
        image = _as_float(batch["image"])
        if image.ndim != 4 or image.shape[1] != self.channels:
            got = image.shape[1] if image.ndim == 4 else "?"
            raise ShapeError(
                f"views.video: expected frames [B, {self.channels}, H, W], got {tuple(image.shape)}; set views.channels = {got}"
            )
        flow: Tensor | None = None
        if "flow" in self.views:
            flow = self.flow_field(batch)
            if self.training and not self.flow_augment.is_identity:
                flow = self.flow_augment(flow)
        out: list[Tensor] = []
        for i, name in enumerate(self.views):
            if name == "flow":
                assert flow is not None
                out.append(flow)
            elif name == "next_frame" and self.training:
                out.append(augment(self._next_frame(batch, image), i))
            else:  # "frame", and in eval mode every frame view: the labelled frame t
                out.append(augment(image, i))
        return out

    def extra_repr(self) -> str:
        return f"views={self.views}, flow={self.flow!r}, flow_scale={self.flow_scale}, channels={self.channels}"
