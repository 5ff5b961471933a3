"""Shared helpers of the PNG plots drawn with PIL (matplotlib is not a dependency).

Both the analysis sweep plot (:func:`contrastkit.analysis.write_sweep_plot`) and the experiments'
plots (:mod:`contrastkit.experiments.plots`) draw their own axes; this module holds what they share,
so neither layer imports the other.

Example:
    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
"""

from __future__ import annotations

import math

__all__ = ["nice_ticks"]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (about ``count`` of them).

    Example:
        >>> nice_ticks(0, 97)
        [0.0, 20.0, 40.0, 60.0, 80.0]
    """
    span = high - low
    if not span > 0:
        return [low]
    step = 10 ** math.floor(math.log10(span / count))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [float(round(first + i * step, 10)) for i in range(int((high - first) / step + 1e-9) + 1)]
