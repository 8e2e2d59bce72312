"""``novacache.benchmark.stats``: quantiles and the interval of a median, by what they
promise (the interval covers the median at least as often as asked, whatever the
distribution), not by their arithmetic alone."""

from __future__ import annotations

import doctest
import random
from fractions import Fraction
from math import comb

import pytest

from novacache.benchmark import stats
from novacache.benchmark.stats import median_interval, quantile, verdict


def test_quantile_interpolates_between_the_nearest_values() -> None:
    values = [1.0, 2.0, 4.0, 8.0]
    assert quantile(values, 0.0) == 1.0
    assert quantile(values, 1.0) == 8.0
    assert quantile(values, 0.5) == 3.0
    assert quantile(values, 0.25) == pytest.approx(1.75)


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    [
        (31, 10, 22),  # P(B <= 9) = 0.0147 <= 0.025 < P(B <= 10) = 0.0354
        (11, 2, 10),  # P(B <= 1) = 0.0059 <= 0.025 < P(B <= 2) = 0.0327
        (6, 1, 6),  # P(B <= 1) = 0.109 > 0.025: the whole range
        (5, 1, 5),  # too few for 95%: the whole range all the same
        (1, 1, 1),
    ],
)
def test_the_interval_is_the_order_statistics_the_binomial_allows(n: int, lo: int, hi: int) -> None:
    values = [float(i) for i in range(1, n + 1)]
    shuffled = values[:]
    random.Random(n).shuffle(shuffled)
    assert median_interval(shuffled) == (float(lo), float(hi))


@pytest.mark.parametrize("n", [1023, 1024, 1100, 5000])
def test_a_thousand_rounds_and_more_get_their_interval_too(n: int) -> None:
    # 2 ** n beyond a float's range (n >= 1024) once raised OverflowError. The j found
    # must be the largest with P(B < j) <= 2.5%, checked here in exact fractions.
    lo, hi = median_interval([float(i) for i in range(1, n + 1)])
    j = int(lo)
    assert hi == n + 1 - j

    def below(k: int) -> Fraction:  # P(B < k)
        return Fraction(sum(comb(n, i) for i in range(k)), 2**n)

    assert below(j) <= Fraction(1, 40) < below(j + 1)


@pytest.mark.parametrize("draw", ["uniform", "lognormal", "bimodal"])
def test_the_interval_covers_the_median_at_least_95_percent_of_the_time(draw: str) -> None:
    rng = random.Random(20261206)
    samplers = {
        "uniform": (lambda: rng.random(), 0.5),
        # exp(N(0, 1)): skewed, median 1
        "lognormal": (lambda: rng.lognormvariate(0.0, 1.0), 1.0),
        # two modes with a gap, as the two round-trip times of an unpinned client: half
        # the mass below 1.2, half above 1.8, so 1.5 (as any value between) is a median
        "bimodal": (
            lambda: rng.uniform(1.0, 1.2) if rng.random() < 0.5 else rng.uniform(1.8, 2.0),
            1.5,
        ),
    }
    sample, median = samplers[draw]
    trials = 2000
    covered = 0
    for _ in range(trials):
        lo, hi = median_interval([sample() for _ in range(31)])
        covered += lo <= median <= hi
    # The exact coverage for 31 draws is 1 - 2 * P(B <= 9) = 0.9706; 2,000 trials put
    # the observed fraction within 0.012 of it at three standard deviations.
    assert covered / trials >= 0.955


def test_no_values_or_a_confidence_outside_0_1_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        median_interval([])
    with pytest.raises(ValueError, match="confidence"):
        median_interval([1.0], confidence=1.0)


@pytest.mark.parametrize(
    ("ratio", "interval", "higher", "expected"),
    [
        (1.02, (1.00, 1.03), False, (True, True)),  # at most the bound, all of it
        (1.02, (1.01, 1.04), False, (True, False)),  # met by the median only
        (1.05, (1.02, 1.07), False, (False, False)),
        (1.05, (1.04, 1.07), False, (False, True)),
        (1.20, (1.10, 1.30), True, (True, True)),  # ops/s: at least the bound
        (1.05, (0.98, 1.10), True, (True, False)),
        (0.95, (0.90, 0.99), True, (False, True)),
    ],
)
def test_a_verdict_says_met_and_how_sure(
    ratio: float, interval: tuple[float, float], higher: bool, expected: tuple[bool, bool]
) -> None:
    bound = 1.03 if not higher else 1.0
    assert verdict(ratio, interval, bound, higher_is_better=higher) == expected


def test_the_modules_examples_run() -> None:
    failed, attempted = doctest.testmod(stats)
    assert attempted > 0
    assert failed == 0
