"""One binomial proportion: confidence intervals, exact tests, zero-event bounds.

Rates such as "slip rate ≤ 0.1 %" or "pass@1 ≥ 0.6 with one sample per task"
are proportions of independent 0/1 outcomes.  The default interval is
Clopper–Pearson ("beta"): it is conservative (coverage ≥ nominal for every
true rate), which is what a gate that must not false-PASS wants.  Wilson and
Jeffreys are offered because they are shorter on average, at the price of
coverage that dips slightly below nominal at some true rates.
"""

from __future__ import annotations

import math

from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = [
    "PROPORTION_METHODS",
    "binomial_p_value",
    "proportion_estimate",
    "zero_event_upper",
]

#: CI method name accepted in a gate spec → (statsmodels name, human-readable label).
PROPORTION_METHODS: dict[str, tuple[str, str]] = {
    "beta": ("beta", "Clopper–Pearson exact"),
    "clopper-pearson": ("beta", "Clopper–Pearson exact"),
    "exact": ("beta", "Clopper–Pearson exact"),
    "wilson": ("wilson", "Wilson score"),
    "jeffreys": ("jeffreys", "Jeffreys"),
}


def _check_counts(successes: int, n: int) -> None:
    if n < 1:
        raise StatsError(f"a proportion needs n ≥ 1 items, got n={n}; evaluate some items first")
    if not (0 <= successes <= n):
        raise StatsError(f"successes={successes} must lie in [0, n={n}]")


def _check_alpha(alpha: float) -> None:
    if not (0.0 < alpha < 1.0):
        raise StatsError(f"alpha={alpha!r} must lie in (0, 1); a 95 % two-sided CI uses 0.05")


def zero_event_upper(n: int, *, alpha: float) -> float:
    """Exact one-sided (1−α) upper bound on the rate after 0 events in ``n`` trials.

    Solves (1−p)^n = α, i.e. p = 1 − α^(1/n); for α = 0.05 this is the
    "rule of three" (≈ 3/n).  It equals the Clopper–Pearson upper bound at
    x = 0 with one-sided level α.
    """
    _check_alpha(alpha)
    if n < 1:
        raise StatsError(f"zero-event bound needs n ≥ 1 trials, got n={n}")
    return -math.expm1(math.log(alpha) / n)


def proportion_estimate(
    successes: int, n: int, *, alpha: float, method: str | None = None
) -> Estimate:
    """Point estimate k/n with a two-sided ``1−alpha`` interval by ``method``.

    ``method`` is one of :data:`PROPORTION_METHODS` (default Clopper–Pearson).
    Jeffreys uses the Brown–Cai–DasGupta boundary convention (lo = 0 at k = 0,
    hi = 1 at k = n), because the raw Beta quantile there would claim a
    non-zero lower bound after zero events.  ``extra`` records the successes
    and, at k = 0, the exact zero-event upper bound at the same per-side level.
    """
    _check_counts(successes, n)
    _check_alpha(alpha)
    key = (method or "beta").lower()
    if key not in PROPORTION_METHODS:
        raise StatsError(
            f"unknown proportion CI method {method!r}; use one of: "
            + ", ".join(sorted(PROPORTION_METHODS))
        )
    sm_name, label = PROPORTION_METHODS[key]
    lo, hi = proportion_confint(successes, n, alpha=alpha, method=sm_name)
    lo, hi = float(lo), float(hi)
    if sm_name == "jeffreys":
        if successes == 0:
            lo = 0.0
        if successes == n:
            hi = 1.0
    extra: dict[str, object] = {"successes": successes}
    if successes == 0:
        extra["zero_event_upper"] = zero_event_upper(n, alpha=alpha / 2.0)
    value = successes / n
    return Estimate(
        value=value,
        lo=max(0.0, min(lo, value)),
        hi=min(1.0, max(hi, value)),
        n=n,
        method=label,
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )


def binomial_p_value(successes: int, n: int, *, threshold: float, greater: bool) -> float:
    """Exact one-sided binomial p-value against the rate ``threshold``.

    ``greater=True`` tests H0: p ≤ threshold against H1: p > threshold (a "≥"
    gate); ``greater=False`` tests H0: p ≥ threshold against H1: p < threshold.
    This is the test whose inversion is the Clopper–Pearson bound, so it agrees
    with the default decision rule.
    """
    _check_counts(successes, n)
    if not (0.0 <= threshold <= 1.0):
        raise StatsError(f"threshold={threshold!r} for a proportion must lie in [0, 1]")
    alternative = "greater" if greater else "less"
    return float(stats.binomtest(successes, n, threshold, alternative=alternative).pvalue)
