"""Power planning: how many items would make a gate decidable.

An INCONCLUSIVE verdict is only useful if it says what would settle it.  For a
proportion gate the planner searches n exactly under the binomial model, using
the same exact one-sided test whose inversion is the Clopper–Pearson bound, so
"n needed" and the decision rule agree.  Zero-event claims ("≤ 0.1 % with no
slips") have a closed form: the smallest n with (1 − t)^n ≤ α.  Other metrics
get a normal-approximation planner from the observed interval width, and two
independent proportions use statsmodels' ``NormalIndPower`` with Cohen's h.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = [
    "n_for_proportion",
    "n_for_two_proportions",
    "n_from_interval",
    "n_zero_events",
    "proportion_power",
]

#: Beyond this many items the exact scan stops and the normal approximation answers.
_EXACT_SCAN_LIMIT = 1_000_000
_CHUNK = 50_000


def _check_levels(alpha: float, power: float) -> None:
    if not (0.0 < alpha < 0.5):
        raise StatsError(f"alpha={alpha!r} must lie in (0, 0.5) (one-sided level, e.g. 0.05)")
    if not (0.0 < power < 1.0):
        raise StatsError(f"power={power!r} must lie in (0, 1), e.g. 0.8")


def n_zero_events(threshold: float, *, alpha: float) -> int:
    """Smallest n such that 0 events in n trials bounds the rate ≤ ``threshold``.

    The exact one-sided (1−α) upper bound after zero events is 1 − α^(1/n), so
    we need (1 − t)^n ≤ α: n = ⌈log α / log(1 − t)⌉ (2,995 for t = 0.1 %,
    α = 0.05).  No smaller sample can support the claim whatever it observes.
    """
    if not (0.0 < threshold < 1.0):
        raise StatsError(f"threshold={threshold!r} must lie in (0, 1) for a zero-event bound")
    if not (0.0 < alpha < 1.0):
        raise StatsError(f"alpha={alpha!r} must lie in (0, 1)")
    n = max(1, math.ceil(math.log(alpha) / math.log1p(-threshold)))
    # guard the ceiling against floating-point error on either side
    while n > 1 and (n - 1) * math.log1p(-threshold) <= math.log(alpha):
        n -= 1
    while n * math.log1p(-threshold) > math.log(alpha):
        n += 1
    return n


def _power_curve(ns: np.ndarray, true_rate: float, threshold: float, alpha: float) -> np.ndarray:
    """Probability that the exact one-sided level-α bound separates from ``threshold``."""
    if true_rate > threshold:
        # reject H0: p ≤ t when X ≥ k, smallest k with P_t(X ≥ k) ≤ α
        k = stats.binom.isf(alpha, ns, threshold) + 1
        k = np.where(stats.binom.sf(k - 2, ns, threshold) <= alpha, k - 1, k)
        k = np.where(stats.binom.sf(k - 1, ns, threshold) > alpha, k + 1, k)
        return np.where(k > ns, 0.0, stats.binom.sf(k - 1, ns, true_rate))
    # reject H0: p ≥ t when X ≤ k, largest k with P_t(X ≤ k) ≤ α
    k = stats.binom.ppf(alpha, ns, threshold)
    k = np.where(stats.binom.cdf(k, ns, threshold) <= alpha, k, k - 1)
    k = np.where(stats.binom.cdf(k + 1, ns, threshold) <= alpha, k + 1, k)
    return np.where(k < 0, 0.0, stats.binom.cdf(k, ns, true_rate))


def proportion_power(n: int, *, true_rate: float, threshold: float, alpha: float) -> float:
    """Power of the exact one-sided test at n items (see :func:`n_for_proportion`)."""
    if n < 1:
        raise StatsError(f"n={n} must be ≥ 1")
    _check_levels(alpha, 0.5)
    if true_rate == threshold:
        return 0.0
    return float(_power_curve(np.array([n]), true_rate, threshold, alpha)[0])


def _normal_n(true_rate: float, threshold: float, alpha: float, power: float) -> float:
    za = stats.norm.isf(alpha)
    zb = stats.norm.isf(1.0 - power)
    num = za * math.sqrt(threshold * (1 - threshold)) + zb * math.sqrt(true_rate * (1 - true_rate))
    return float((num / (true_rate - threshold)) ** 2)


def n_for_proportion(
    true_rate: float, threshold: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Smallest n at which a proportion gate decides with probability ≥ ``power``.

    The gate decides once the exact one-sided (1−α) bound lies on the true
    rate's side of ``threshold`` (a PASS or a FAIL, whichever is true).  The
    search is exact under the binomial model up to 10⁶ items; beyond that the
    normal approximation (accurate there) is returned.  ``None`` when the true
    rate equals the threshold: no n decides such a gate with power above α.
    Because binomial power is a saw-tooth in n, "smallest n" is reported; a
    slightly larger n can occasionally have marginally lower power.
    """
    _check_levels(alpha, power)
    for name, value in (("true_rate", true_rate), ("threshold", threshold)):
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise StatsError(f"{name}={value!r} must lie in [0, 1]")
    if true_rate == threshold:
        return None
    if true_rate in (0.0, 1.0) and 0.0 < threshold < 1.0:
        edge = threshold if true_rate == 0.0 else 1.0 - threshold
        return n_zero_events(edge, alpha=alpha)
    approx = _normal_n(true_rate, threshold, alpha, power)
    if approx > _EXACT_SCAN_LIMIT:
        return math.ceil(approx)
    start = 1
    while start <= _EXACT_SCAN_LIMIT * 2:
        ns = np.arange(start, start + _CHUNK)
        hits = np.nonzero(_power_curve(ns, true_rate, threshold, alpha) >= power)[0]
        if hits.size:
            return int(ns[hits[0]])
        start += _CHUNK
    return math.ceil(approx)  # pragma: no cover - the normal start point makes this unreachable


def n_for_two_proportions(
    p_candidate: float,
    p_baseline: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> int | None:
    """Items per arm to detect p_candidate ≠ p_baseline one-sidedly (Cohen's h, normal).

    Uses statsmodels ``proportion_effectsize`` and ``NormalIndPower``; ``ratio``
    is baseline-arm size over candidate-arm size.  ``None`` when the rates are equal.
    """
    _check_levels(alpha, power)
    if p_candidate == p_baseline:
        return None
    h = abs(float(proportion_effectsize(p_candidate, p_baseline)))
    n = NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, ratio=ratio, alternative="larger"
    )
    return math.ceil(float(n))


def n_from_interval(
    estimate: Estimate, threshold: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Normal-approximation planner for any metric from its observed interval.

    Reads the per-item spread off the interval width (se ≈ half-width / z,
    sd ≈ se·√n) and returns n with (z_α + z_power)·sd/√n ≤ |value − threshold|.
    ``None`` when the value sits on the threshold or the interval has no width
    (a deterministic metric: more items would not change the decision).
    """
    _check_levels(alpha, power)
    values = (estimate.value, estimate.lo, estimate.hi)
    if estimate.n < 1 or any(math.isnan(v) or math.isinf(v) for v in values):
        return None
    gap = abs(estimate.value - threshold)
    if estimate.sided is Sided.TWO:
        half = (estimate.hi - estimate.lo) / 2.0
        z_est = stats.norm.isf(estimate.alpha / 2.0)
    else:
        half = (
            estimate.value - estimate.lo
            if estimate.sided is Sided.LOWER
            else estimate.hi - estimate.value
        )
        z_est = stats.norm.isf(estimate.alpha)
    if gap == 0.0 or half <= 0.0:
        return None
    sd = half / z_est * math.sqrt(estimate.n)
    z = stats.norm.isf(alpha) + stats.norm.isf(1.0 - power)
    return max(1, math.ceil(float((z * sd / gap) ** 2)))
