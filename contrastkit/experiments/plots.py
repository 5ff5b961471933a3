"""The experiments' PNG plots, drawn with PIL only (matplotlib is not a dependency).

Two kinds: :func:`bar_panels` (one panel per task, one bar per arm: seed 000's Table 1, learned
vs raw views) and :func:`line_plot` (a score against a swept quantity: accuracy against K). A value
may be a :class:`~contrastkit.experiments.stats.Summary` over seeds: the bar or point is its mean,
with a ±1 sd whisker and every seed's value drawn as a dot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from contrastkit.errors import InvalidParameter
from contrastkit.experiments.stats import Summary
from contrastkit.plotting import nice_ticks

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Panel", "bar_panels", "line_plot"]

_COLOURS = [(66, 114, 196), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179), (147, 120, 96)]


@attrs.frozen
class Panel:
    """One panel of :func:`bar_panels`: a title, ``(bar label, value)`` pairs, and which way is better.

    Example:
        >>> Panel("error (px)", [("a", 3.0)], higher_is_better=False).best
        'a'
    """

    title: str
    bars: list[tuple[str, float | Summary]]
    higher_is_better: bool = True

    @property
    def best(self) -> str:
        """The label of the best finite bar (by its mean)."""
        finite = [(label, _mean(v)) for label, v in self.bars if math.isfinite(_mean(v))]
        if not finite:
            return ""
        pick = max if self.higher_is_better else min
        return pick(finite, key=lambda item: item[1])[0]


def _mean(value: float | Summary) -> float:
    return value.mean if isinstance(value, Summary) else float(value)


def _seed_values(value: float | Summary) -> list[float]:
    return [v for v in value.values if math.isfinite(v)] if isinstance(value, Summary) else []


def _whisker(value: float | Summary) -> tuple[float, float] | None:
    if isinstance(value, Summary) and math.isfinite(value.sd):
        return value.mean - value.sd, value.mean + value.sd
    return None


def _extent(values: Sequence[float | Summary]) -> list[float]:
    """Every number a plot must show: means, whisker ends and seed values."""
    out = []
    for v in values:
        out += [_mean(v), *_seed_values(v), *(_whisker(v) or ())]
    return [x for x in out if math.isfinite(x)]


def _save(image: Image.Image, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out


def bar_panels(path: str | Path, title: str, panels: Sequence[Panel]) -> Path:
    """Side-by-side bar charts, one per panel, the best bar of each outlined in black; writes a PNG.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "bars.png"
        >>> panels = [Panel("digit top-1 (%)", [("share digit", 60.0), ("share position", 15.0)], higher_is_better=True)]
        >>> bar_panels(out, "Table 1", panels).read_bytes()[:4] == b"\\x89PNG"
        True
    """
    from PIL import Image, ImageDraw

    if not panels or any(not p.bars for p in panels):
        raise InvalidParameter("panels", "need at least one panel, each with at least one bar", len(panels))
    panel_w, height, top, bottom, left = 300, 420, 60, 110, 50
    image = Image.new("RGB", (panel_w * len(panels) + 20, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), title, fill="black")
    for index, panel in enumerate(panels):
        x_origin = 10 + index * panel_w
        high = max([*_extent([v for _, v in panel.bars]), 0.0]) * 1.1 or 1.0
        ticks = nice_ticks(0.0, high)
        plot_h = height - top - bottom
        draw.text((x_origin + left, top - 25), panel.title + ("" if panel.higher_is_better else "  (lower is better)"),
                  fill="black")
        draw.line([(x_origin + left, top), (x_origin + left, top + plot_h)], fill="black")
        draw.line([(x_origin + left, top + plot_h), (x_origin + panel_w - 10, top + plot_h)], fill="black")
        for tick in ticks:
            y = top + plot_h - tick / high * plot_h
            draw.line([(x_origin + left - 4, y), (x_origin + left, y)], fill="black")
            draw.text((x_origin + 5, y - 6), f"{tick:g}", fill="black")
        slot = (panel_w - left - 20) / len(panel.bars)
        best = panel.best
        def to_y(v: float) -> float:
            return top + plot_h - max(v, 0.0) / high * plot_h  # noqa: B023 - called only in this iteration

        for j, (label, value) in enumerate(panel.bars):
            x0 = x_origin + left + 5 + j * slot
            x1 = x0 + slot * 0.7
            mean = _mean(value)
            if math.isfinite(mean):
                y = to_y(mean)
                outline = "black" if label == best else None
                draw.rectangle([x0, y, x1, top + plot_h], fill=_COLOURS[j % len(_COLOURS)], outline=outline, width=2)
                whisker = _whisker(value)
                mid = (x0 + x1) / 2
                if whisker:
                    draw.line([(mid, to_y(whisker[0])), (mid, to_y(whisker[1]))], fill="black", width=2)
                    for end in whisker:
                        draw.line([(mid - 5, to_y(end)), (mid + 5, to_y(end))], fill="black", width=2)
                for seed_value in _seed_values(value):
                    sy = to_y(seed_value)
                    draw.ellipse([mid + 8 - 3, sy - 3, mid + 8 + 3, sy + 3], fill="white", outline="black")
                draw.text((x0, min(y, to_y(whisker[1]) if whisker else y) - 14), f"{mean:.1f}", fill="black")
            for k, word in enumerate(label.split(" ")):  # labels wrap at spaces under the bar
                draw.text((x0, top + plot_h + 6 + 12 * k), word, fill="black")
    return _save(image, path)


def line_plot(
    path: str | Path,
    title: str,
    *,
    x_label: str,
    y_label: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float | Summary]]]],
    log2_x: bool = False,
) -> Path:
    """Lines of ``(x, y)`` points, one per named series (``log2_x``: x on a log-2 axis); writes a PNG.

    A ``y`` that is a :class:`Summary` is drawn at its mean with a ±1 sd whisker and a dot per seed.

    Example:
        >>> import tempfile, pathlib
        >>> out = line_plot(pathlib.Path(tempfile.mkdtemp()) / "k.png", "accuracy vs K", x_label="K",
        ...                 y_label="top-1 (%)", series=[("linear", [(16, 50.0), (256, 60.0)])], log2_x=True)
        >>> out.suffix
        '.png'
    """
    from PIL import Image, ImageDraw

    points = [(x, y) for _, s in series for x, value in s for y in _extent([value])]
    if not points:
        raise InvalidParameter("series", "need at least one finite point", len(series))
    width, height, left, right, top, bottom = 720, 480, 80, 150, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)

    def fx(x: float) -> float:
        return math.log2(x) if log2_x else x

    xs, ys = [fx(x) for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (max(ys) - min(ys)) * 0.1 or max(abs(max(ys)) * 0.1, 1.0)
    y0, y1 = min(ys) - pad, max(ys) + pad

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        px = left + (fx(x) - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    draw.text((10, 10), title, fill="black")
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], fill="black", width=2)
    x_ticks = sorted({x for x, _ in points}) if log2_x else nice_ticks(x0, x1)
    for tick in x_ticks:
        px, _ = to_pixel(tick, y0)
        draw.line([(px, height - bottom), (px, height - bottom + 5)], fill="black")
        draw.text((px - 10, height - bottom + 8), f"{tick:g}", fill="black")
    for tick in nice_ticks(y0, y1):
        _, py = to_pixel(2 ** x0 if log2_x else x0, tick)
        draw.line([(left - 5, py), (left, py)], fill="black")
        draw.text((left - 45, py - 6), f"{tick:g}", fill="black")
    draw.text((width // 2 - 60, height - 25), x_label + (" (log scale)" if log2_x else ""), fill="black")
    draw.text((10, 25), y_label, fill="black")
    for index, (name, data) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        pixels = [to_pixel(x, _mean(y)) for x, y in data if math.isfinite(_mean(y))]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour, outline="black")
        for x, value in data:
            whisker = _whisker(value)
            if whisker:
                (px, lo), (_, hi) = to_pixel(x, whisker[0]), to_pixel(x, whisker[1])
                draw.line([(px, lo), (px, hi)], fill=colour, width=1)
                for end in (lo, hi):
                    draw.line([(px - 4, end), (px + 4, end)], fill=colour, width=1)
            for seed_value in _seed_values(value):
                px, py = to_pixel(x, seed_value)
                draw.ellipse([px + 5, py - 2, px + 9, py + 2], fill=colour)
        draw.text((width - right + 10, top + 16 * index), name, fill=colour)
    return _save(image, path)
