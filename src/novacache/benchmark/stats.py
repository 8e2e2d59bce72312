"""Order statistics for benchmark results: quantiles, and how sure a median is.

A row of ``novacache bench`` reports a median over interleaved rounds, and a target is
judged on it. When the rounds spread, a median a little under a target and one a little
over it are the same result; :func:`median_interval` says how far the median could be
from the one another run would give, without assuming a distribution of the rounds.

>>> quantile([1.0, 2.0, 3.0, 4.0], 0.5)
2.5
>>> median_interval([float(i) for i in range(1, 32)])  # 31 rounds: the 10th to the 22nd
(10.0, 22.0)
>>> median_interval([1.0, 2.0, 3.0])  # too few rounds for 95%: the whole range
(1.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from math import comb

__all__ = ["median_interval", "quantile", "verdict"]


def quantile(sorted_values: list[float], q: float) -> float:
    """The ``q``-quantile (0 <= q <= 1) of ``sorted_values`` (ascending, not empty),
    interpolated linearly between the two nearest values."""
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """A confidence interval for the median of what ``values`` were drawn from
    (independent draws; any distribution): the ``j``-th smallest and the ``j``-th
    largest of them, ``j`` the largest with ``P(B < j) <= (1 - confidence) / 2`` for
    ``B`` ~ Binomial(n, 1/2), so that it covers the median with probability at least
    ``confidence``. With fewer values than that needs (n < 6 for 95%) it is their whole
    range, which covers it with probability ``1 - 2 ** (1 - n)``.

    Raises ``ValueError`` for no values or a confidence outside (0, 1)."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("median_interval() needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence!r}")
    tail = (1.0 - confidence) / 2.0
    total = 2**n  # an int: divided by it (not converted), any n stays in float range
    j = 1
    below = comb(n, 0)  # 2**n * P(B <= j - 1)
    while j < (n + 1) // 2 and (below + comb(n, j)) / total <= tail:
        below += comb(n, j)
        j += 1
    return xs[j - 1], xs[n - j]


def verdict(
    ratio: float, interval: tuple[float, float], bound: float, higher_is_better: bool = False
) -> tuple[bool, bool]:
    """Whether ``ratio`` (a median) meets ``bound`` (at most it; at least it when
    ``higher_is_better``), and whether that is decided: its ``interval`` (low, high)
    lies wholly on one side of the bound, so another run would most likely agree.

    >>> verdict(1.02, (1.01, 1.04), 1.03)
    (True, False)
    >>> verdict(1.5, (1.3, 1.6), 1.0, higher_is_better=True)
    (True, True)
    """
    low, high = interval
    if higher_is_better:
        return ratio >= bound, low >= bound or high < bound
    return ratio <= bound, high <= bound or low > bound
