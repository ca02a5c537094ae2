"""p-values by inverting a confidence-interval procedure.

Holm and Benjamini–Hochberg need a p-value per gate, but several metrics
(bootstrap-based pass@k, ratios of paired proportions) have an interval and no
closed-form test.  Any interval family that is nested in α defines a test: the
one-sided p-value for "metric > t" is half the smallest two-sided α whose lower
bound reaches t.  We find it by bisection on log α, re-running the estimator
with a fixed seed so the intervals are nested.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from harness.stats.estimate import Estimate

__all__ = ["p_value_by_inversion"]

_A_MIN = 1e-6
_A_MAX = 1.0 - 1e-6
_STEPS = 30


def _smallest_alpha(clears: Callable[[float], bool]) -> float | None:
    """Smallest two-sided α in [_A_MIN, _A_MAX] at which ``clears`` holds (monotone)."""
    if clears(_A_MIN):
        return _A_MIN
    if not clears(_A_MAX):
        return None
    lo, hi = math.log(_A_MIN), math.log(_A_MAX)
    for _ in range(_STEPS):
        mid = (lo + hi) / 2.0
        if clears(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def p_value_by_inversion(
    estimate_at: Callable[[float], Estimate], *, threshold: float, greater: bool
) -> float:
    """One-sided p-value for H1 "metric > threshold" (``greater``) or "< threshold".

    ``estimate_at(alpha)`` must return the two-sided ``1−alpha`` interval of a
    deterministic (fixed-seed) procedure.  When even the narrowest interval
    does not reach the claimed side, the p-value is 1 − (p-value of the
    opposite claim), so p-values for the two directions add up to about 1.
    Resolution: p-values below 5·10⁻⁷ are reported as 5·10⁻⁷.
    """

    def lower_clears(a: float) -> bool:
        return estimate_at(a).lo >= threshold

    def upper_clears(a: float) -> bool:
        return estimate_at(a).hi <= threshold

    mine, theirs = (lower_clears, upper_clears) if greater else (upper_clears, lower_clears)
    a = _smallest_alpha(mine)
    if a is not None:
        return a / 2.0
    b = _smallest_alpha(theirs)
    if b is not None:
        return 1.0 - b / 2.0
    return 0.5
