"""``contrastkit.experiments.stats``: per-seed summaries and the noise rule, against naive float64 references."""

from __future__ import annotations

import math
import random

import pytest

from contrastkit.experiments.stats import clears, difference, noise_note, summarize


def naive_mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def test_summary_matches_a_naive_sample_mean_and_sd() -> None:
    rng = random.Random(0)
    for n in (2, 3, 5, 10):
        values = [rng.uniform(0, 100) for _ in range(n)]
        s = summarize(values)
        mean, sd = naive_mean_sd(values)
        assert s.mean == pytest.approx(mean, abs=1e-12) and s.sd == pytest.approx(sd, abs=1e-12)
        assert s.sem == pytest.approx(sd / math.sqrt(n), abs=1e-12) and s.n == n


def test_one_seed_has_a_mean_but_no_spread_and_a_missing_seed_has_no_mean() -> None:
    one = summarize([4.0])
    assert one.mean == 4.0 and math.isnan(one.sd) and math.isnan(one.sem) and one.format() == "4.00"
    missing = summarize([4.0, math.nan, 5.0])
    assert math.isnan(missing.mean) and missing.format() == "–"


def test_difference_standard_error_is_the_root_sum_of_squared_standard_errors() -> None:
    a, b = [70.0, 74.0, 72.0, 71.0], [60.0, 65.0, 61.0]
    d = difference(summarize(a), summarize(b))
    (ma, sa), (mb, sb) = naive_mean_sd(a), naive_mean_sd(b)
    assert d.mean == pytest.approx(ma - mb) and d.se == pytest.approx(math.sqrt(sa**2 / 4 + sb**2 / 3))


@pytest.mark.parametrize(
    ("better", "worse", "margin", "strictly", "expected"),
    [
        ([80.0, 80.0, 80.0], [70.0, 70.0, 70.0], 5.0, False, True),  # no spread: the fixed margin decides
        ([75.0, 75.0, 75.0], [70.0, 70.0, 70.0], 5.0, False, True),  # exactly the margin
        ([75.0, 75.0, 75.0], [70.0, 70.0, 70.0], 5.0, True, False),  # "more than" the margin
        ([74.9, 74.9, 74.9], [70.0, 70.0, 70.0], 5.0, False, False),  # below the margin
        ([80.0, 60.0, 100.0], [70.0, 70.0, 70.0], 5.0, False, False),  # 10 points, 2 se = 23.1: noise
        ([81.0, 79.0, 80.0], [71.0, 69.0, 70.0], 5.0, False, True),  # 10 points, 2 se = 1.6
        ([80.0], [70.0], 5.0, False, False),  # one seed: the spread is unknown
        ([80.0, math.nan], [70.0, 70.0], 5.0, False, False),  # a missing number never wins
    ],
)
def test_clears_needs_the_margin_and_twice_the_standard_error(
    better: list[float], worse: list[float], margin: float, strictly: bool, expected: bool
) -> None:
    assert clears(summarize(better), summarize(worse), margin, strictly=strictly) is expected


def test_clears_agrees_with_a_naive_rule_on_random_draws() -> None:
    rng = random.Random(1)
    for _ in range(300):
        a = [rng.gauss(70, rng.uniform(0.1, 8)) for _ in range(3)]
        b = [rng.gauss(65, rng.uniform(0.1, 8)) for _ in range(3)]
        (ma, sa), (mb, sb) = naive_mean_sd(a), naive_mean_sd(b)
        se = math.sqrt(sa**2 / 3 + sb**2 / 3)
        assert clears(summarize(a), summarize(b), 1.0) is (ma - mb >= 1.0 and ma - mb > 2 * se)


def test_noise_note_names_only_the_comparisons_within_noise() -> None:
    clear = ("clear", summarize([80.0, 81.0, 79.0]), summarize([70.0, 71.0, 69.0]))
    noisy = ("noisy", summarize([80.0, 60.0, 100.0]), summarize([70.0, 70.0, 70.0]))
    assert noise_note([clear]) == ""
    assert noise_note([clear, noisy]) == " Within noise (difference of means <= 2 standard errors): noisy (+10.0 ± 11.5)."
