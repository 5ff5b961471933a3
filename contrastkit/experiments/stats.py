"""Seed statistics for the experiments: an arm's numbers over seeds, and when a difference is more than noise.

Every arm of an experiment is trained once per seed. A verdict compares arm *means*, and a margin
counts only if the difference of the means clears both the experiment's fixed margin and twice its
standard error, ``sqrt(sd_a² / n_a + sd_b² / n_b)`` (sample standard deviations, ``n - 1``): the
seed-to-seed spread of this data is several points, so a single-seed gap of a few points says
nothing. With fewer than two seeds on either side the standard error is unknown, and no margin counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["Difference", "Summary", "clears", "difference", "noise_note", "summarize"]


@attrs.frozen
class Summary:
    """One quantity over seeds: every seed's value, their mean and sample standard deviation.

    ``nan`` values (a seed that did not report it) make the mean ``nan``: a missing number never wins.

    Example:
        >>> s = summarize([70.0, 74.0, 72.0])
        >>> s.mean, s.sd, s.n, str(s)
        (72.0, 2.0, 3, '72.00 ± 2.00')
        >>> str(summarize([5.0]))
        '5.00'
    """

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """How many seeds."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """The mean over seeds (``nan`` if any seed lacks the value, or there are none)."""
        if not self.values or not all(math.isfinite(v) for v in self.values):
            return math.nan
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        """The sample standard deviation (``nan`` for fewer than two seeds)."""
        if self.n < 2 or not math.isfinite(self.mean):
            return math.nan
        return statistics.stdev(self.values)

    @property
    def sem(self) -> float:
        """The standard error of the mean, ``sd / sqrt(n)``."""
        return self.sd / math.sqrt(self.n) if self.n >= 2 else math.nan

    def format(self, digits: int = 2) -> str:
        """``mean ± sd`` (just the mean for one seed; ``–`` when missing)."""
        if not math.isfinite(self.mean):
            return "–"
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def __str__(self) -> str:
        return self.format()


def summarize(values: Iterable[float]) -> Summary:
    """A :class:`Summary` of per-seed values.

    Example:
        >>> summarize([1, 2, 3]).mean
        2.0
    """
    return Summary(tuple(float(v) for v in values))


@attrs.frozen
class Difference:
    """``a - b`` of two arms' means and the standard error of that difference.

    Example:
        >>> d = difference(summarize([80.0, 82.0]), summarize([70.0, 72.0]))
        >>> d.mean, round(d.se, 6)
        (10.0, 1.414214)
    """

    mean: float
    se: float


def difference(a: Summary, b: Summary) -> Difference:
    """The difference of means ``a - b`` and its standard error ``sqrt(sem_a² + sem_b²)`` (``nan``: unknown).

    Example:
        >>> difference(summarize([3.0]), summarize([1.0, 2.0]))
        Difference(mean=1.5, se=nan)
    """
    return Difference(mean=a.mean - b.mean, se=math.hypot(a.sem, b.sem))


def clears(better: Summary, worse: Summary, margin: float, *, strictly: bool = False) -> bool:
    """Whether ``better``'s mean exceeds ``worse``'s by at least ``margin`` (more than it, if ``strictly``) and by
    more than twice the standard error of the difference. Unknown spread (a single seed) never clears.

    Example:
        >>> clears(summarize([80.0, 80.0, 80.0]), summarize([70.0, 70.0, 70.0]), 5.0)
        True
        >>> clears(summarize([80.0, 60.0, 100.0]), summarize([70.0, 70.0, 70.0]), 5.0)  # 10 points, se 11.5
        False
        >>> clears(summarize([80.0]), summarize([70.0]), 5.0)  # one seed: noise unknown
        False
    """
    d = difference(better, worse)
    if not (math.isfinite(d.mean) and math.isfinite(d.se)):
        return False
    above = d.mean > margin if strictly else d.mean >= margin
    return above and d.mean > 2.0 * d.se


def noise_note(pairs: Sequence[tuple[str, Summary, Summary]]) -> str:
    """A sentence naming the comparisons whose means differ by less than twice their standard error.

    Example:
        >>> noise_note([("digit", summarize([80.0, 60.0, 100.0]), summarize([70.0, 70.0, 70.0]))])
        ' Within noise (difference of means <= 2 standard errors): digit (+10.0 ± 11.5).'
    """
    weak = []
    for name, a, b in pairs:
        d = difference(a, b)
        if math.isfinite(d.mean) and not (math.isfinite(d.se) and abs(d.mean) > 2.0 * d.se):
            weak.append(f"{name} ({d.mean:+.1f} ± {d.se:.1f})")
    return f" Within noise (difference of means <= 2 standard errors): {', '.join(weak)}." if weak else ""
