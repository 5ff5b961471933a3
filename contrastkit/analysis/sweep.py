"""A sweep's results: one :class:`SweepPoint` per value of the swept key, as a markdown table and a PNG plot.

Example:
    >>> from contrastkit.analysis.information import PairEstimate
    >>> point = SweepPoint("0.5", [PairEstimate("v1-v2", 1.2, 1.57, 15, 4)], "top1", 61.0)
    >>> print(sweep_table("augment.strength", [point], label="digit").splitlines()[-1])
    | 0.5 | 1.200 | 15 | 2.773 | 61.00 |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from contrastkit.analysis.information import PairEstimate
from contrastkit.errors import InvalidParameter
from contrastkit.plotting import nice_ticks

__all__ = ["SweepPoint", "run_sweep", "sweep_table", "write_sweep", "write_sweep_plot"]


@attrs.frozen
class SweepPoint:
    """One sweep value: its I_NCE estimates and the linear probe of the encoders trained to get them.

    Example:
        >>> estimates = [PairEstimate("v1-v2", 2.0, 1.0, 63, 1)]
        >>> p = SweepPoint(value="0.3", estimates=estimates, metric="top1", accuracy=81.0)
        >>> p.i_nce
        2.0
    """

    value: str
    estimates: list[PairEstimate]
    metric: str
    accuracy: float

    @property
    def i_nce(self) -> float:
        """The mean estimate over the view pairs (the x of the plot)."""
        return sum(e.i_nce for e in self.estimates) / len(self.estimates)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``--json``).

        Example:
            >>> SweepPoint("a", [], "top1", 1.0).as_dict()["estimates"]
            []
        """
        return {"value": self.value, "metric": self.metric, "accuracy": self.accuracy,
                "estimates": [e.as_dict() for e in self.estimates]}


def _metric_header(metric: str, label: str) -> str:
    return f"{label} linear top-1 (%)" if metric == "top1" else f"{label} linear error (px)"


def sweep_table(key: str, points: Sequence[SweepPoint], *, label: str) -> str:
    """A markdown table, one row per swept value: I_NCE per pair, K, log(K+1), the probe's score.

    Example:
        >>> pts = [SweepPoint("0.1", [PairEstimate("v1-v2", 1.5, 2.66, 63, 4)], "top1", 70.0)]
        >>> print(sweep_table("augment.scale_min", pts, label="digit"))
        | augment.scale_min | I_NCE v1-v2 (nats) | K | log(K+1) | digit linear top-1 (%) |
        | --- | --- | --- | --- | --- |
        | 0.1 | 1.500 | 63 | 4.159 | 70.00 |
    """
    if not points:
        raise InvalidParameter("points", "the sweep has no results", 0)
    pairs = [e.pair for e in points[0].estimates]
    header = [key, *(f"I_NCE {p} (nats)" for p in pairs), "K", "log(K+1)", _metric_header(points[0].metric, label)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for point in points:
        k = point.estimates[0].num_negatives
        cells = [point.value]
        cells += [f"{e.i_nce:.3f}" + (" (saturated)" if e.saturated else "") for e in point.estimates]
        cells += [str(k), f"{math.log(k + 1):.3f}", f"{point.accuracy:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sweep_plot(path: str | Path, key: str, points: Sequence[SweepPoint], *, label: str) -> Path:
    """Draw the probe's score against I_NCE, one labelled point per swept value, to a PNG (PIL only).

    The points are joined in sweep order, so InfoMin's reverse-U shows as a rise then a fall.

    Example:
        >>> import tempfile, pathlib
        >>> pts = [SweepPoint(v, [PairEstimate("v1-v2", x, 1.0, 63, 1)], "top1", y)
        ...        for v, x, y in (("0.08", 1.0, 60.0), ("0.3", 2.0, 80.0), ("0.6", 3.0, 70.0))]
        >>> out = write_sweep_plot(pathlib.Path(tempfile.mkdtemp()) / "s.png", "augment.scale_min", pts, label="digit")
        >>> out.read_bytes()[:4] == b"\\x89PNG"
        True
    """
    from PIL import Image, ImageDraw

    if not points:
        raise InvalidParameter("points", "the sweep has no results", 0)
    width, height, left, right, top, bottom = 720, 480, 80, 30, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    xs, ys = [p.i_nce for p in points], [p.accuracy for p in points]

    def padded(values: list[float]) -> tuple[float, float]:
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or max(abs(high) * 0.1, 0.1)
        return low - pad, high + pad

    (x0, x1), (y0, y1) = padded(xs), padded(ys)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], fill="black", width=2)
    for tick in nice_ticks(x0, x1):
        px, _ = to_pixel(tick, y0)
        draw.line([(px, height - bottom), (px, height - bottom + 5)], fill="black")
        draw.text((px - 10, height - bottom + 8), f"{tick:g}", fill="black")
    for tick in nice_ticks(y0, y1):
        _, py = to_pixel(x0, tick)
        draw.line([(left - 5, py), (left, py)], fill="black")
        draw.text((left - 45, py - 6), f"{tick:g}", fill="black")
    draw.text((width // 2 - 120, height - 25), "I_NCE of the views (nats, mean over pairs)", fill="black")
    draw.text((10, 10), f"{_metric_header(points[0].metric, label)} vs I_NCE, sweeping {key}", fill="black")
    pixels = [to_pixel(x, y) for x, y in zip(xs, ys)]
    draw.line(pixels, fill=(120, 120, 200), width=1)
    for point, (px, py) in zip(points, pixels):
        draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill=(200, 40, 40), outline="black")
        draw.text((px + 8, py - 14), point.value, fill="black")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out


def run_sweep(
    key: str,
    values: Sequence[str],
    build: Callable[[str], tuple[list[PairEstimate], Any]],
) -> list[SweepPoint]:
    """Call ``build(value)`` (estimate + probe for the recipe with ``key = value``) for each value.

    Example:
        >>> fake = lambda v: ([PairEstimate("v1-v2", float(v), 0.0, 7, 1)], None)
        >>> [p.i_nce for p in run_sweep("train.lr", ["1", "2"], fake)]
        [1.0, 2.0]
    """
    points = []
    for value in values:
        estimates, result = build(value)
        metric = getattr(result, "metric", "top1")
        accuracy = float(getattr(result, "value", float("nan")))
        points.append(SweepPoint(value=value, estimates=estimates, metric=metric, accuracy=accuracy))
    return points


def write_sweep(out: str | Path, key: str, points: Sequence[SweepPoint], *, label: str) -> tuple[Path, Path]:
    """Write ``sweep.md`` (:func:`sweep_table`) and ``sweep.png`` (:func:`write_sweep_plot`) into ``out``.

    Example:
        >>> import tempfile
        >>> pts = [SweepPoint(v, [PairEstimate("v1-v2", x, 1.0, 63, 1)], "top1", y)
        ...        for v, x, y in (("0.1", 1.0, 60.0), ("0.2", 2.0, 80.0))]
        >>> [p.name for p in write_sweep(tempfile.mkdtemp(), "critic.temperature", pts, label="digit")]
        ['sweep.md', 'sweep.png']
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    table_path = folder / "sweep.md"
    table_path.write_text(sweep_table(key, points, label=label) + "\n")
    return table_path, write_sweep_plot(folder / "sweep.png", key, points, label=label)
