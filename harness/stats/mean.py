"""Means of real-valued outcomes: t interval, Welch / paired t-tests, permutation test.

The safety collusion analysis compares score distributions between groups, so
besides the one-sample t interval this module exposes Welch's two-sample test
(no equal-variance assumption), the paired t-test and a distribution-free
permutation test of the difference in means — all thin wrappers over scipy
that return one result type naming the method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = ["TestResult", "mean_estimate", "paired_ttest", "permutation_test_means", "welch_ttest"]

_ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class TestResult:
    """A hypothesis test of mean(a) − mean(b) (or mean(a − b)); CI at the requested level."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    difference: float
    lo: float
    hi: float
    method: str
    alternative: str


def _arr(x: np.ndarray, name: str, min_n: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or len(a) < min_n:
        raise StatsError(f"{name} needs at least {min_n} values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise StatsError(f"{name} values must be finite")
    return a


def _alt(alternative: str) -> str:
    if alternative not in _ALTERNATIVES:
        raise StatsError(f"alternative={alternative!r} must be one of {', '.join(_ALTERNATIVES)}")
    return alternative


def mean_estimate(values: np.ndarray, *, alpha: float) -> Estimate:
    """Sample mean with the two-sided ``1−alpha`` Student t interval."""
    x = _arr(values, "mean")
    m = float(x.mean())
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        lo = hi = m
    else:
        lo, hi = (
            float(v)
            for v in stats.t.interval(1 - alpha, len(x) - 1, loc=m, scale=sd / np.sqrt(len(x)))
        )
    return Estimate(
        value=m,
        lo=lo,
        hi=hi,
        n=len(x),
        method="Student t interval",
        alpha=alpha,
        sided=Sided.TWO,
        extra={"sd": sd, "zero_variance": sd == 0.0},
    )


def welch_ttest(
    a: np.ndarray, b: np.ndarray, *, alternative: str = "two-sided", alpha: float = 0.05
) -> TestResult:
    """Welch's two-sample t-test of mean(a) − mean(b) with its CI (scipy ``ttest_ind``)."""
    x, y = _arr(a, "a"), _arr(b, "b")
    res = stats.ttest_ind(x, y, equal_var=False, alternative=_alt(alternative))
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return TestResult(
        float(res.statistic),
        float(res.pvalue),
        float(x.mean() - y.mean()),
        float(ci.low),
        float(ci.high),
        "Welch two-sample t",
        alternative,
    )


def paired_ttest(
    a: np.ndarray, b: np.ndarray, *, alternative: str = "two-sided", alpha: float = 0.05
) -> TestResult:
    """Paired t-test of mean(a − b) with its CI (scipy ``ttest_rel``)."""
    x, y = _arr(a, "a"), _arr(b, "b")
    if x.shape != y.shape:
        raise StatsError(f"paired t-test needs equal lengths, got {len(x)} and {len(y)}")
    res = stats.ttest_rel(x, y, alternative=_alt(alternative))
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return TestResult(
        float(res.statistic),
        float(res.pvalue),
        float((x - y).mean()),
        float(ci.low),
        float(ci.high),
        "paired t",
        alternative,
    )


def _diff_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis) - np.mean(y, axis=axis))


def permutation_test_means(
    a: np.ndarray,
    b: np.ndarray,
    *,
    alternative: str = "two-sided",
    paired: bool = False,
    n_resamples: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Permutation test of the difference in means (scipy ``permutation_test``).

    Independent groups permute labels; ``paired=True`` flips signs within pairs.
    The interval fields are NaN: a permutation test gives a p-value only.
    """
    x, y = _arr(a, "a"), _arr(b, "b")
    if paired and x.shape != y.shape:
        raise StatsError(f"paired permutation test needs equal lengths, got {len(x)} and {len(y)}")
    res = stats.permutation_test(
        (x, y),
        _diff_means,
        permutation_type="samples" if paired else "independent",
        alternative=_alt(alternative),
        n_resamples=n_resamples,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    kind = "paired sign-flip" if paired else "two-sample label"
    return TestResult(
        float(res.statistic),
        float(res.pvalue),
        float(x.mean() - y.mean()),
        float("nan"),
        float("nan"),
        f"{kind} permutation test",
        alternative,
    )
