"""Bounded-mean gates: ``mean`` on [0, 1] values, pass@k and the pass@k uplift.

All three decide on the betting interval (:mod:`harness.stats.betting`), so the
designs are the shapes that broke the previous methods: skewed similarities
for ``mean`` (Beta(0.4, 0.6) and a mixture of low and near-1 values, true mean
exactly on 0.4), Beta(1.5, 2.5) per-task pass rates for pass@2 (where the task
BCa bootstrap false-PASSed 5.4 % at 40 tasks) and heterogeneous per-task pass
rates from a Beta mixture for the uplift (true pass@16 − pass@1 exactly 8 pp).
The ``mean`` family also keeps the Student t row for gates declared
``bounds: unbounded`` (normal values).  Replicates are run in one vectorized
call of the gate's own function.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

from harness.calibrate.core import (
    ALPHA,
    CalibrationRow,
    binary_outcomes,
    calibration_gate,
    register_family,
    row_from_bounds,
)
from harness.metrics import estimate_metric
from harness.stats.betting import METHOD as BETTING
from harness.stats.betting import betting_bounds
from harness.stats.passk import pass_at_k_unbiased

__all__: list[str] = []

_T_THRESHOLD = 0.4


def _mixture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """90 % low similarities, 10 % near-1 ones (Beta(40, 1)), overall mean exactly 0.4."""
    low_mean = (_T_THRESHOLD - 0.1 * 40 / 41) / 0.9  # Beta(10·m, 10·(1−m)) has mean m
    high = rng.random(shape) < 0.1
    low = rng.beta(10 * low_mean, 10 * (1 - low_mean), shape)
    return np.asarray(np.where(high, rng.beta(40, 1, shape), low))


def _beta_values(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(rng.beta(0.4, 0.6, shape))


@register_family("mean")
def _mean(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    ns = (20,) if small else (20, 50, 200)
    rows = []
    for n in ns:
        for name, draw in (("Beta(0.4, 0.6)", _beta_values), ("90/10 mixture", _mixture)):
            x = draw(rng, (reps, n))
            lo, hi = betting_bounds(x, alpha=2 * ALPHA)
            # the Student t bound on the same data, for the record (refused on bounded values)
            half = stats.t.ppf(1 - ALPHA, n - 1) * x.std(axis=1, ddof=1) / math.sqrt(n)
            t_fp = float(np.mean(x.mean(axis=1) + half <= _T_THRESHOLD))
            rows.append(
                row_from_bounds(
                    "mean",
                    BETTING,
                    n=n,
                    lo=lo,
                    hi=hi,
                    truth=_T_THRESHOLD,
                    extra={"values": name, "student_t_false_pass_le": round(t_fp, 4)},
                )
            )
    # Student t, kept for gates that declare `bounds: unbounded`: normal values
    g = calibration_gate("mean", 0.0, bounds="unbounded", normality="calibration: normal values")
    n = 20
    ests = [
        estimate_metric(g, binary_outcomes(rng.normal(0.0, 1.0, n)), alpha=2 * ALPHA)
        for _ in range(reps)
    ]
    rows.append(
        row_from_bounds(
            "mean (unbounded)",
            ests[0].method,
            n=n,
            lo=np.array([e.lo for e in ests]),
            hi=np.array([e.hi for e in ests]),
            truth=0.0,
            extra={"values": "normal"},
        )
    )
    return rows


def _uplift_truth(w: float, k_hi: int, k_lo: int, comps: list[tuple[float, float]]) -> float:
    """E[(1 − (1−p)^k_hi) − (1 − (1−p)^k_lo)] for p from the two-component Beta mixture."""

    def surv(k: int, a: float, b: float) -> float:  # E (1 − p)^k under Beta(a, b)
        return math.exp(special.betaln(a, b + k) - special.betaln(a, b))

    (a1, b1), (a2, b2) = comps
    return sum(
        wt * (surv(k_lo, a, b) - surv(k_hi, a, b))
        for wt, (a, b) in ((w, (a1, b1)), (1 - w, (a2, b2)))
    )


@register_family("pass_at_k")
def _pass_at_k(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    per, k, a, b = 5, 2, 1.5, 2.5
    # per-task pass rates ~ Beta(a, b): true pass@k = 1 − B(a, b + k) / B(a, b)
    truth = float(1 - math.exp(special.betaln(a, b + k) - special.betaln(a, b)))
    # per-task unbiased pass@k for c = 0..per correct of `per` samples (the gate's estimator)
    table = np.array([pass_at_k_unbiased(per, j, k) for j in range(per + 1)])
    rows = []
    for tasks in (40,) if small else (100, 40):
        c = rng.binomial(per, rng.beta(a, b, (reps, tasks)))
        lo, hi = betting_bounds(table[c], alpha=2 * ALPHA)
        rows.append(
            row_from_bounds(
                "pass_at_k",
                f"task {BETTING}",
                n=tasks,
                lo=lo,
                hi=hi,
                truth=truth,
                extra={"tasks": tasks, "samples_per_task": per},
            )
        )
    return rows


@register_family("pass_at_k_uplift")
def _uplift(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    k_hi, k_lo, per = 16, 1, 16
    # hard tasks with rare successes (most of the uplift) mixed with all-or-nothing tasks
    comps = [(0.3, 12.0), (0.05, 0.05)]
    target = 0.08
    w = float(optimize.brentq(lambda v: _uplift_truth(v, k_hi, k_lo, comps) - target, 0, 1))
    rows = []
    for tasks in (40,) if small else (40, 164):
        hard = rng.random((reps, tasks)) < w
        p = np.where(hard, rng.beta(*comps[0], (reps, tasks)), rng.beta(*comps[1], (reps, tasks)))
        c = rng.binomial(per, p)
        # per-task unbiased pass@k_hi − pass@k_lo, from the same samples
        table = np.array(
            [
                pass_at_k_unbiased(per, j, k_hi) - pass_at_k_unbiased(per, j, k_lo)
                for j in range(per + 1)
            ]
        )
        lo, hi = betting_bounds(table[c], alpha=2 * ALPHA)
        rows.append(
            row_from_bounds(
                "pass_at_k_uplift",
                f"task {BETTING}",
                n=tasks,
                lo=lo,
                hi=hi,
                truth=target,
                extra={"samples_per_task": per, "hard_share": round(w, 4)},
            )
        )
    return rows
