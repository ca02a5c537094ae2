"""Calibration families: paired difference, quantile, trend, sequential."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from harness.calibrate.core import (
    ALPHA,
    CalibrationRow,
    binary_outcomes,
    calibration_gate,
    register_family,
    row_from_estimates,
)
from harness.errors import StatsError
from harness.metrics import estimate_metric
from harness.spec import GateSpec
from harness.stats.power import n_for_proportion
from harness.stats.sequential import coverage_paths

__all__: list[str] = []


@register_family("paired_difference")
def _paired(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    # joint cells: P(1,1)=.40, P(1,0)=.15, P(0,1)=.10, P(0,0)=.35 → difference 0.05
    cells = np.array([0.40, 0.15, 0.10, 0.35])
    cand_of = np.array([1, 1, 0, 0])
    base_of = np.array([1, 0, 1, 0])
    truth = 0.05
    g = calibration_gate("paired_difference", truth)
    rows = []
    for n in (150,) if small else (50, 300):
        ests = []
        for r in range(reps):
            idx = rng.choice(4, size=n, p=cells)
            ests.append(
                estimate_metric(
                    g,
                    binary_outcomes(cand_of[idx]),
                    alpha=2 * ALPHA,
                    baseline=binary_outcomes(base_of[idx]),
                    seed=r,
                )
            )
        rows.append(row_from_estimates("paired_difference", ests, truth))
    return rows


def _order_ranks(g: GateSpec, n: int) -> tuple[int, int]:
    """The order statistics (1-based ranks) the gate's quantile interval uses at ``n``.

    The gate is run on the distinct values 1..n, so each bound *is* its rank; a bound
    that is not a whole rank (the point estimate took its place) cannot be summed
    exactly and raises.
    """
    est = estimate_metric(g, binary_outcomes(np.arange(1.0, n + 1.0)), alpha=2 * ALPHA)
    lo, hi = est.lo, est.hi
    if not (float(lo).is_integer() and float(hi).is_integer()):
        raise StatsError(
            f"quantile calibration: at n={n} the gate's bounds ({lo}, {hi}) are not order "
            "statistics; the exact sum does not apply"
        )
    return int(lo), int(hi)


@register_family("quantile")
def _quantile(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    """Exact: the order-statistic interval is distribution-free for continuous values.

    With the gate's ranks r ≤ s at n, the lower bound X₍ᵣ₎ clears the true q-quantile
    ξ exactly when fewer than r values fall below ξ, so false-PASS(≥) = P(Bin(n, q) ≤ r − 1)
    and false-PASS(≤) = P(X₍ₛ₎ ≤ ξ) = P(Bin(n, q) ≥ s) — for *any* continuous
    distribution, summed exactly (no Monte-Carlo error).  A Monte-Carlo spot check on
    exp(1) values (``mc_check``) runs ``min(reps, 200)`` replicates through the gate.
    """
    q = 0.95
    truth = -math.log(1 - q)  # exponential(1) quantile, for the spot check
    g = calibration_gate("quantile", truth, params={"q": q})
    rows = []
    for n in (120,) if small else (72, 300):
        r, s = _order_ranks(g, n)
        fp_ge = float(stats.binom.cdf(r - 1, n, q))
        fp_le = float(stats.binom.sf(s - 1, n, q))
        spot = [
            estimate_metric(g, binary_outcomes(rng.exponential(1.0, n)), alpha=2 * ALPHA)
            for _ in range(min(reps, 200))
        ]
        mc = row_from_estimates("quantile", spot, truth)
        rows.append(
            CalibrationRow(
                family="quantile",
                method=spot[0].method,
                n=n,
                reps=0,
                truth=truth,
                alpha=ALPHA,
                false_pass_ge=fp_ge,
                false_pass_le=fp_le,
                coverage=1.0 - fp_ge - fp_le,
                nominal=1 - 2 * ALPHA,
                extra={
                    "q": q,
                    "ranks": f"X({r}), X({s})",
                    "distribution": "any continuous",
                    "mc_check": f"exp(1), {mc.reps} runs: "
                    f"{mc.false_pass_ge:.4f} / {mc.false_pass_le:.4f}",
                },
                exact=True,
            )
        )
    return rows


@register_family("trend_slope")
def _trend(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    """Flat series (true slope exactly 0) with i.i.d. normal noise, both methods a YAML may pick."""
    rows = []
    for method in ("theil-sen", "ols"):
        g = calibration_gate("trend_slope", 0.0, method=method)
        for n in (20,) if small else (20, 100):
            ests = [
                estimate_metric(g, binary_outcomes(rng.normal(0.0, 1.0, n)), alpha=2 * ALPHA)
                for _ in range(reps)
            ]
            rows.append(row_from_estimates("trend_slope", ests, 0.0, {"noise": "normal"}))
    return rows


@register_family("sequential")
def _sequential(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    max_n, grid, t, alt = (200, 201, 0.5, 0.7) if small else (1000, 501, 0.5, 0.65)
    alpha2 = 2 * ALPHA
    # at the threshold: time-uniform false-PASS with a look after every item
    x0 = (rng.random((reps, max_n)) < t).astype(float)
    lo0, hi0 = coverage_paths(x0, alpha=alpha2, grid=grid)
    fp_ge = float(np.mean(np.any(lo0 >= t, axis=1)))
    fp_le = float(np.mean(np.any(hi0 <= t, axis=1)))
    cover = float(np.mean(np.all((lo0 <= t) & (t <= hi0), axis=1)))
    # clearly above: how much of the fixed budget does it use to PASS?
    x1 = (rng.random((reps, max_n)) < alt).astype(float)
    lo1, _ = coverage_paths(x1, alpha=alpha2, grid=grid)
    passed = lo1 >= t
    decided = passed.any(axis=1)
    stop = np.where(decided, np.argmax(passed, axis=1) + 1, max_n)
    return [
        CalibrationRow(
            family="sequential",
            method="betting confidence sequence (time-uniform)",
            n=max_n,
            reps=reps,
            truth=t,
            alpha=ALPHA,
            false_pass_ge=fp_ge,
            false_pass_le=fp_le,
            coverage=cover,
            nominal=1 - alpha2,
            extra={
                "alt_truth": alt,
                "alt_pass_rate": float(decided.mean()),
                "mean_fraction_used": float(stop.mean() / max_n),
                "mean_n_used": float(stop.mean()),
                # a fixed-n Clopper–Pearson design reaching 80 % power at alt_truth
                "fixed_n_80pct_power": n_for_proportion(alt, t, alpha=ALPHA, power=0.8),
            },
        )
    ]
