"""Paired comparisons of a candidate against a baseline on the same items.

When baseline and candidate answer the same prompts, pairing removes the
between-item variance: the right test for 0/1 outcomes is McNemar's exact test
on the discordant pairs, and the difference of proportions gets Newcombe's
hybrid-score interval for paired data (method 10 of Newcombe 1998, built on
statsmodels' Wilson intervals; hand-written because neither scipy nor
statsmodels has it, hence Monte-Carlo-checked in ``harness calibrate``).
Continuous outcomes use a paired bootstrap of the mean difference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from harness.errors import StatsError
from harness.stats.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci, degenerate_bounds
from harness.stats.estimate import Estimate, Sided

__all__ = ["mcnemar_exact", "newcombe_paired_ci", "paired_difference_estimate"]


def _check(cand: np.ndarray, base: np.ndarray) -> None:
    if cand.shape != base.shape or cand.ndim != 1:
        raise StatsError(
            f"paired data need two equal-length 1-D arrays, got {cand.shape} and {base.shape}"
        )
    if len(cand) < 1:
        raise StatsError("paired comparison needs at least one pair")


def _table(cand: np.ndarray, base: np.ndarray) -> tuple[int, int, int, int]:
    """(both 1, cand 1 & base 0, cand 0 & base 1, both 0)."""
    a = int(np.sum((cand == 1) & (base == 1)))
    b = int(np.sum((cand == 1) & (base == 0)))
    c = int(np.sum((cand == 0) & (base == 1)))
    d = int(np.sum((cand == 0) & (base == 0)))
    return a, b, c, d


def mcnemar_exact(cand: np.ndarray, base: np.ndarray) -> dict[str, float]:
    """McNemar exact test (statsmodels) plus the one-sided exact binomial p-values.

    Returns ``p_two_sided`` and ``p_candidate_higher`` / ``p_candidate_lower``:
    binomial tests of the discordant pairs against 1/2.
    """
    cand, base = np.asarray(cand, dtype=float), np.asarray(base, dtype=float)
    _check(cand, base)
    a, b, c, d = _table(cand, base)
    two = float(mcnemar([[a, b], [c, d]], exact=True).pvalue)
    if b + c == 0:
        higher = lower = 1.0
    else:
        higher = float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
        lower = float(stats.binomtest(b, b + c, 0.5, alternative="less").pvalue)
    return {
        "p_two_sided": two,
        "p_candidate_higher": higher,
        "p_candidate_lower": lower,
        "discordant_candidate_only": float(b),
        "discordant_baseline_only": float(c),
    }


def newcombe_paired_ci(a: int, b: int, c: int, d: int, *, alpha: float) -> tuple[float, float]:
    """Newcombe (1998) method-10 interval for p_cand − p_base from a paired 2×2 table.

    ``a``: both 1, ``b``: candidate 1 only, ``c``: baseline 1 only, ``d``: both 0.
    Combines Wilson intervals of the two margins with the continuity-corrected
    phi correlation, as in the paper.
    """
    n = a + b + c + d
    if n < 1:
        raise StatsError("paired table is empty")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = (float(v) for v in proportion_confint(a + b, n, alpha=alpha, method="wilson"))
    l2, u2 = (float(v) for v in proportion_confint(a + c, n, alpha=alpha, method="wilson"))
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    if denom == 0:
        phi = 0.0
    else:
        num = float(a * d - b * c)
        num = max(num - n / 2.0, 0.0) if num > 0 else num
        phi = num / math.sqrt(denom)
    delta = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    eps = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    diff = p1 - p2
    return max(-1.0, diff - delta), min(1.0, diff + eps)


def _mean_diff(c: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(c, axis=axis) - np.mean(b, axis=axis))


def _paired_bootstrap_bounds(
    cand: np.ndarray,
    base: np.ndarray,
    *,
    binary: bool,
    method: str,
    alpha: float,
    seed: int,
    n_resamples: int,
) -> tuple[float, float, str]:
    """Bootstrap bounds on the mean paired difference; exact ones when every pair differs alike
    (a bootstrap of a constant is that constant, which would overstate the evidence)."""
    n = len(cand)
    diff = float(cand.mean() - base.mean())
    d = cand - base
    if n >= 2 and np.all(d == d[0]):
        if binary:
            lo, hi = degenerate_bounds(diff, n, alpha=alpha, lower=-1.0, upper=1.0)
        else:
            lo, hi = diff, diff
        return lo, hi, "constant paired differences (bootstrap degenerate)"
    ci = bootstrap_ci(
        (cand, base),
        _mean_diff,
        alpha=alpha,
        seed=seed,
        method=method,
        n_resamples=n_resamples,
        paired=True,
        unit="pair",
    )
    return ci.lo, ci.hi, f"paired {ci.label}"


def paired_difference_estimate(
    cand: np.ndarray,
    base: np.ndarray,
    *,
    alpha: float,
    seed: int = 0,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Estimate:
    """Mean(candidate) − mean(baseline) over pairs with a two-sided ``1−alpha`` interval.

    Binary data: Newcombe's paired interval by default (``method`` "newcombe"),
    McNemar p-values in ``extra``.  ``method`` "bca"/"percentile"/"basic" (or
    continuous data) uses a paired bootstrap; continuous data also get a paired
    t-test p-value in ``extra``.
    """
    cand, base = np.asarray(cand, dtype=float), np.asarray(base, dtype=float)
    _check(cand, base)
    n = len(cand)
    diff = float(cand.mean() - base.mean())
    binary = bool(np.all(np.isin(cand, (0.0, 1.0))) and np.all(np.isin(base, (0.0, 1.0))))
    key = (method or ("newcombe" if binary else "bca")).lower()
    extra: dict[str, object] = {
        "candidate_mean": float(cand.mean()),
        "baseline_mean": float(base.mean()),
    }
    if binary:
        extra.update(mcnemar_exact(cand, base))
    if key == "newcombe":
        if not binary:
            raise StatsError(
                "method 'newcombe' needs 0/1 outcomes; use 'bca' for continuous values"
            )
        lo, hi = newcombe_paired_ci(*_table(cand, base), alpha=alpha)
        label = "Newcombe paired score (method 10)"
    else:
        constant = n >= 2 and bool(np.all(cand - base == cand[0] - base[0]))
        if n >= 2 and not binary and not constant:
            extra["p_paired_t_two_sided"] = float(stats.ttest_rel(cand, base).pvalue)
        lo, hi, label = _paired_bootstrap_bounds(
            cand, base, binary=binary, method=key, alpha=alpha, seed=seed, n_resamples=n_resamples
        )
    return Estimate(
        value=diff,
        lo=min(lo, diff),
        hi=max(hi, diff),
        n=n,
        method=label,
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )
