"""Draw what every built-in view maker produces on the embedded data: ``docs/views/images/*.png``.

Each picture has one row per sample and one column per image: the input(s) first, then every view
the view maker returns, each made displayable in [0, 1] by :func:`displayable`. The views are
made exactly as training makes them (``Pipeline.prepare_batch``, then the view maker) but without
augmentation, so what differs between the columns is the view maker alone.

Usage (from a checkout after ``pip install -e .``)::

    python docs/views/make_pictures.py                        # writes docs/views/images/
    python docs/views/make_pictures.py --out /tmp/pictures --samples 6
    python docs/views/make_pictures.py --learned-flow runs/infomin/views/checkpoints/final.pt

``--learned-flow`` draws a trained generator's views (a stage-1 checkpoint of ``examples/infomin.toml``);
without it ``learned-flow`` is drawn at its initialisation (identity: the YDbDr views) and after a
random rotation, to show what the flow can do.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> main(["--out", str(out), "--samples", "2", "--only", "color-split"])
    0
    >>> sorted(p.name for p in out.iterdir())
    ['color-split.png']
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from contrastkit.training.checkpoint import load_checkpoint
from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.errors import ContrastkitError
from contrastkit.pipeline import Pipeline
from contrastkit.views.color_spaces import COLOR_SPACES

HERE = Path(__file__).resolve().parent
SCALE = 3  # 32 px images drawn at 96 px
LABEL_HEIGHT = 14


def displayable(view: Tensor, *, kind: str = "auto") -> Tensor:
    """A view ``[B, C, H, W]`` as RGB ``[B, 3, H, W]`` in [0, 1].

    ``kind = "flow"``: 2-channel optical flow as the usual colour wheel (hue = direction, value =
    magnitude over the batch's largest). ``"normals"``: unit vectors as ``(n + 1) / 2``. Otherwise
    each channel is min-max scaled over the batch; 1 channel is grey, 2 channels red/green.

    Example:
        >>> displayable(torch.rand(2, 1, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
        >>> float(displayable(torch.zeros(1, 3, 2, 2), kind="normals").mean())
        0.5
    """
    view = view.detach().float()
    if kind == "normals":
        return ((view + 1) / 2).clamp(0, 1)
    if kind == "flow":
        dx, dy = view[:, 0], view[:, 1]
        hue = (torch.atan2(dy, dx) / (2 * math.pi)) % 1.0
        magnitude = torch.sqrt(dx**2 + dy**2)
        value = magnitude / magnitude.amax().clamp_min(1e-8)
        return _hsv_to_rgb(hue, torch.ones_like(hue), value)
    low = view.amin(dim=(0, 2, 3), keepdim=True)
    high = view.amax(dim=(0, 2, 3), keepdim=True)
    view = (view - low) / (high - low).clamp_min(1e-8)
    if view.shape[1] == 1:
        return view.expand(-1, 3, -1, -1)
    if view.shape[1] == 2:
        return torch.cat([view, torch.zeros_like(view[:, :1])], dim=1)
    return view[:, :3]


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """``[B, H, W]`` hue in [0, 1), saturation, value -> ``[B, 3, H, W]`` RGB."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def picture(columns: Sequence[tuple[str, Tensor]]) -> Image.Image:
    """One image: a titled column per ``(title, [B, 3, H, W])``, one row per sample.

    Example:
        >>> picture([("a", torch.rand(2, 3, 8, 8)), ("b", torch.rand(2, 3, 8, 8))]).size
        (48, 62)
    """
    rows, _, h, w = columns[0][1].shape
    cell_w, cell_h = w * SCALE, h * SCALE
    canvas = Image.new("RGB", (cell_w * len(columns), LABEL_HEIGHT + cell_h * rows), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (title, images) in enumerate(columns):
        draw.text((c * cell_w + 2, 1), title, fill="black")
        big = F.interpolate(images.float(), size=(cell_h, cell_w), mode="nearest")
        pixels = (big.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for r in range(rows):
            canvas.paste(Image.fromarray(pixels[r]), (c * cell_w, LABEL_HEIGHT + r * cell_h))
    return canvas


def _batch(dataset: ColorfulMovingDigits, samples: int) -> dict[str, Tensor]:
    items = [dataset[i] for i in range(samples)]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def _views(views: Any, batch: dict[str, Tensor]) -> tuple[Pipeline, dict[str, Tensor], list[Tensor]]:
    pipe = Pipeline(views=views, encoder={"name": "convnet", "width": 4, "depth": 2}).eval()
    prepared = pipe.prepare_batch(batch)
    with torch.no_grad():
        made = pipe.view_maker.train()(prepared, lambda images, view: images)  # training-mode views, no augmentation
    return pipe, prepared, made


def draw_color_split(samples: int) -> Image.Image:
    """Every colour space split into its three channels (rows: samples; one block per space)."""
    batch = _batch(ColorfulMovingDigits(split="test", size=samples, seed=3, palette="random"), samples)
    columns: list[tuple[str, Tensor]] = []
    for space in COLOR_SPACES:
        _, prepared, views = _views({"name": "color-split", "space": space, "groups": [[0], [1], [2]]}, batch)
        if not columns:
            columns.append(("RGB", prepared["image"]))
        names = {"lab": "Lab", "ydbdr": "YDbDr", "ycbcr": "YCbCr", "yiq": "YIQ", "hsv": "HSV", "xyz": "XYZ",
                 "luv": "Luv", "rgb": "RGB"}[space]
        for channel, view in zip(names if space != "ydbdr" else ("Y", "Db", "Dr"), views):
            label = f"{names}:{channel}" if space != "ydbdr" else f"YDbDr:{channel}"
            columns.append((label, displayable(view)))
    return picture(columns)


def draw_factor_pair(samples: int) -> Image.Image:
    """``factor-pair``: the two images of pairs sharing only the digit, only the background, only the position."""
    columns: list[tuple[str, Tensor]] = []
    for share in (["digit"], ["background"], ["position"]):
        data = ColorfulMovingDigits(split="test", size=samples, seed=3, palette="random", pair=share)
        _, _, views = _views({"name": "factor-pair", "share": share}, _batch(data, samples))
        columns += [(f"{share[0]}: v1", views[0]), ("v2", views[1])]
    return picture(columns)


def draw_learned_flow(samples: int, checkpoint: Path | None) -> Image.Image:
    """``learned-flow``: YDbDr views at the identity start, after a random rotation, and a trained ``g``."""
    batch = _batch(ColorfulMovingDigits(split="test", size=samples, seed=3, palette="random"), samples)
    columns: list[tuple[str, Tensor]] = []
    makers: list[tuple[str, dict[str, Any]]] = [("identity", {"init": "identity"}), ("rotation", {"init": "rotation"})]
    for title, params in makers:
        torch.manual_seed(0)
        pipe, prepared, _ = _views({"name": "learned-flow", **params}, batch)
        if not columns:
            columns.append(("RGB", prepared["image"]))
        with torch.no_grad():
            shown = pipe.view_maker.learned_views_for_display(prepared["image"])
        columns += [(f"{title}: v1", shown[0]), ("v2", shown[1])]
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        config = state.get("config") or {}
        views = dict(config.get("views") or {"name": "learned-flow"})
        pipe, prepared, _ = _views(views, batch)
        prefix = "view_maker."
        own = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
        pipe.view_maker.load_state_dict(own)
        with torch.no_grad():
            shown = pipe.view_maker.learned_views_for_display(prepared["image"])
        columns += [("trained: v1", shown[0]), ("v2", shown[1])]
    return picture(columns)


def draw_video(samples: int) -> Image.Image:
    """``video``: frame t, frame t+1 and the optical flow between them (ground truth and OpenCV DIS)."""
    data = ColorfulMovingDigits(split="test", size=samples, seed=3, palette="random", sequence=True, velocity=3.0)
    batch = _batch(data, samples)
    _, _, truth = _views({"name": "video", "flow": "precomputed", "flow_scale": 1.0}, batch)
    _, _, dis = _views({"name": "video", "views": ["frame", "flow"], "flow": "opencv-dis", "flow_scale": 1.0}, batch)
    return picture([("frame t", truth[0]), ("frame t+1", truth[1]), ("flow (true)", displayable(truth[2], kind="flow")),
                    ("flow (DIS)", displayable(dis[1], kind="flow"))])


def draw_rgbd(samples: int) -> Image.Image:
    """``rgbd``: L, ab, depth and surface normals (stored and computed from depth)."""
    data = ColorfulMovingDigits(split="test", size=samples, seed=3, palette="random", depth=True, normals=True)
    batch = _batch(data, samples)
    _, prepared, views = _views({"name": "rgbd"}, batch)
    _, _, computed = _views({"name": "rgbd", "views": ["L", "normals"], "normals_source": "depth"}, batch)
    return picture([("RGB", prepared["image"][:, :3]), ("L", displayable(views[0])), ("ab", displayable(views[1])),
                    ("depth", displayable(views[2])), ("normals", displayable(views[3], kind="normals")),
                    ("from depth", displayable(computed[1], kind="normals"))])


DRAWINGS = ("color-split", "factor-pair", "learned-flow", "video", "rgbd")


def main(argv: Sequence[str] | None = None) -> int:
    """Write one PNG per view maker; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python docs/views/make_pictures.py", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "images", help="folder for the PNGs (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=4, help="rows (samples) per picture (default: 4)")
    parser.add_argument("--only", choices=DRAWINGS, action="append", help="draw only these view makers")
    parser.add_argument("--learned-flow", type=Path, default=None, metavar="CHECKPOINT",
                        help="also draw the views of a trained learned-flow generator (a checkpoint)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples: must be >= 1 (got {args.samples})")
    if args.learned_flow is not None and not args.learned_flow.is_file():
        parser.error(f"--learned-flow: no checkpoint at {args.learned_flow}")
    args.out.mkdir(parents=True, exist_ok=True)
    draw = {
        "color-split": lambda: draw_color_split(args.samples),
        "factor-pair": lambda: draw_factor_pair(args.samples),
        "learned-flow": lambda: draw_learned_flow(args.samples, args.learned_flow),
        "video": lambda: draw_video(args.samples),
        "rgbd": lambda: draw_rgbd(args.samples),
    }
    for name in args.only or DRAWINGS:
        try:
            draw[name]().save(args.out / f"{name}.png")
        except ContrastkitError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
