"""Ratios and relative reductions of two proportions; non-inferiority and TOST.

"Capability retention ≥ 90 % of baseline" is a ratio p_cand / p_base; "attack
success rate reduced by ≥ 50 %" is a relative reduction 1 − p_cand / p_base.
With independent samples statsmodels' score interval for the ratio
(``confint_proportions_2indep(compare="ratio", method="score")``) and the
matching score test are used; with paired items (same prompts) the Tang score
interval for matched pairs (:mod:`harness.stats.paired_ratio`), because the
independent-sample interval would ignore the correlation and misstate the width.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    test_proportions_2indep,
    tost_proportions_2indep,
)
from statsmodels.stats.weightstats import ttost_paired

from harness.errors import StatsError
from harness.stats.bootstrap import DEFAULT_RESAMPLES
from harness.stats.estimate import Estimate, Sided
from harness.stats.paired_ratio import METHOD as PAIRED_RATIO_METHOD
from harness.stats.paired_ratio import paired_ratio_score_bounds

__all__ = [
    "PAIRED_SCORE_METHODS",
    "TostResult",
    "ratio_independent",
    "ratio_p_value_independent",
    "ratio_paired",
    "relative_reduction",
    "tost_paired_means",
    "tost_two_proportions",
]


def _counts(x: np.ndarray, name: str) -> tuple[int, int]:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < 1:
        raise StatsError(f"{name} needs a non-empty 1-D array of 0/1 outcomes")
    if not np.all(np.isin(x, (0.0, 1.0))):
        raise StatsError(f"{name} outcomes must be 0/1 for a ratio of proportions")
    return int(x.sum()), len(x)


def ratio_independent(cand: np.ndarray, base: np.ndarray, *, alpha: float) -> Estimate:
    """p_cand / p_base for independent samples, statsmodels score interval."""
    c1, n1 = _counts(cand, "candidate")
    c2, n2 = _counts(base, "baseline")
    if c2 == 0:
        raise StatsError(
            f"ratio undefined: the baseline has 0 events in {n2} items; a ratio (or relative "
            "reduction) needs a baseline with events — gate on the candidate's rate instead"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = confint_proportions_2indep(
            c1, n1, c2, n2, compare="ratio", method="score", alpha=alpha
        )
    value = (c1 / n1) / (c2 / n2)
    lo_f = 0.0 if c1 == 0 else float(lo)
    return Estimate(
        value=value,
        lo=min(lo_f, value),
        hi=max(float(hi), value),
        n=n1,
        method="score interval for a ratio of independent proportions",
        alpha=alpha,
        sided=Sided.TWO,
        extra={
            "candidate_rate": c1 / n1,
            "baseline_rate": c2 / n2,
            "n_baseline": n2,
            "paired": False,
        },
    )


def ratio_p_value_independent(
    cand: np.ndarray, base: np.ndarray, *, ratio0: float, larger: bool
) -> float:
    """Score-test p-value for H1: ratio > ratio0 (``larger``) or ratio < ratio0."""
    c1, n1 = _counts(cand, "candidate")
    c2, n2 = _counts(base, "baseline")
    if ratio0 <= 0:
        raise StatsError(f"ratio threshold {ratio0} must be > 0 for the score test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = test_proportions_2indep(
            c1,
            n1,
            c2,
            n2,
            value=ratio0,
            compare="ratio",
            method="score",
            alternative="larger" if larger else "smaller",
        )
    p = float(res.pvalue)
    return 1.0 if math.isnan(p) else p


#: paired-ratio methods a gate may name for 0/1 outcomes (the score interval)
PAIRED_SCORE_METHODS = frozenset({"score", "tang"})


def _check_paired_ratio_inputs(cand: np.ndarray, base: np.ndarray, *, method: str | None) -> None:
    """Equal-length 0/1 pairs, a baseline rate above 0 and the calibrated method, else why not."""
    if cand.shape != base.shape or cand.ndim != 1 or len(cand) < 2:
        raise StatsError("paired ratio needs two equal-length arrays with ≥ 2 pairs")
    if base.mean() == 0:
        raise StatsError(
            f"ratio undefined: the baseline mean is 0 over {len(base)} items; gate on the "
            "candidate's rate instead"
        )
    if not (np.all(np.isin(cand, (0.0, 1.0))) and np.all(np.isin(base, (0.0, 1.0)))):
        raise StatsError(
            "a paired ratio needs 0/1 outcomes: for continuous scores the pair bootstrap "
            "false-PASSed 8 % at n = 200 (log-normal scores, harness calibrate), and no "
            "calibrated interval is implemented; gate on paired_difference, or map each "
            "item to 0/1"
        )
    key = (method or "score").lower()
    if key not in PAIRED_SCORE_METHODS:
        raise StatsError(
            f"method {method!r} is not calibrated for a paired ratio of 0/1 outcomes (the "
            "pair bootstrap false-PASSes above α at n = 200–400); remove `method` to use "
            "the Tang score interval"
        )


def ratio_paired(
    cand: np.ndarray,
    base: np.ndarray,
    *,
    alpha: float,
    seed: int = 0,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Estimate:
    """p_cand / p_base on paired items.

    0/1 outcomes only: the continuity-corrected Tang score interval for a ratio
    of matched-pair proportions (:mod:`harness.stats.paired_ratio`); the pair
    bootstrap (BCa) false-PASSed 5.5 % at n = 200 for a 5 % gate in a
    20,000-run check, and 8 % on log-normal continuous scores, so it is gone.
    """
    cand, base = np.asarray(cand, dtype=float), np.asarray(base, dtype=float)
    _check_paired_ratio_inputs(cand, base, method=method)
    del seed, n_resamples  # the score interval is deterministic
    value = float(cand.mean() / base.mean())
    a, b, c, d = (
        int(np.sum((cand == 1) & (base == 1))),
        int(np.sum((cand == 1) & (base == 0))),
        int(np.sum((cand == 0) & (base == 1))),
        int(np.sum((cand == 0) & (base == 0))),
    )
    lo_a, hi_a = paired_ratio_score_bounds(a, b, c, d, alpha=alpha)
    lo, hi = float(lo_a[0]), float(hi_a[0])
    extra: dict[str, object] = {
        "candidate_rate": float(cand.mean()),
        "baseline_rate": float(base.mean()),
        "paired": True,
        "table": {"both": a, "candidate_only": b, "baseline_only": c, "neither": d},
    }
    return Estimate(
        value=value,
        lo=min(lo, value),
        hi=max(hi, value),
        n=len(cand),
        method=PAIRED_RATIO_METHOD,
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )


def relative_reduction(ratio: Estimate) -> Estimate:
    """1 − ratio, with the interval flipped: a reduction of ≥ r means a ratio ≤ 1 − r."""
    value = 1.0 - ratio.value
    return Estimate(
        value=value,
        lo=1.0 - ratio.hi,
        hi=1.0 - ratio.lo,
        n=ratio.n,
        method=f"1 − ratio; {ratio.method}",
        alpha=ratio.alpha,
        sided=ratio.sided,
        extra=dict(ratio.extra),
    )


@dataclass(frozen=True)
class TostResult:
    """Equivalence test: p < α means the difference lies inside (low, upp)."""

    p_value: float
    low: float
    upp: float
    method: str


def tost_two_proportions(
    cand: np.ndarray, base: np.ndarray, *, low: float, upp: float, compare: str = "diff"
) -> TostResult:
    """TOST equivalence of two independent proportions (statsmodels ``tost_proportions_2indep``)."""
    c1, n1 = _counts(cand, "candidate")
    c2, n2 = _counts(base, "baseline")
    if not low < upp:
        raise StatsError(f"equivalence margins need low < upp, got ({low}, {upp})")
    res = tost_proportions_2indep(c1, n1, c2, n2, low, upp, compare=compare)
    return TostResult(float(res.pvalue), low, upp, f"TOST two proportions ({compare})")


def tost_paired_means(cand: np.ndarray, base: np.ndarray, *, low: float, upp: float) -> TostResult:
    """TOST equivalence of paired means (statsmodels ``ttost_paired``)."""
    cand, base = np.asarray(cand, dtype=float), np.asarray(base, dtype=float)
    if cand.shape != base.shape or len(cand) < 2:
        raise StatsError("paired TOST needs two equal-length arrays with ≥ 2 pairs")
    if not low < upp:
        raise StatsError(f"equivalence margins need low < upp, got ({low}, {upp})")
    p, _, _ = ttost_paired(cand, base, low, upp)
    return TostResult(float(p), low, upp, "TOST paired t")
