"""Decide a claim about a *training recipe* from several independently seeded runs.

A recipe's result moves between runs (seed, CPU float kernels): one lucky seed
must not carry a PASS.  The claim decided here is that **every** run of the
recipe meets the threshold — for a "≥ t" gate, ``min_s θ_s ≥ t`` over the k
seeds, where ``θ_s`` is the metric of run ``s`` on the item population.

* **PASS side (intersection–union test).**  ``H0: some θ_s < t`` is a union of
  per-run nulls; rejecting it when *each* run's own one-sided level-α test rejects
  is a level-α test without any correction (Berger 1982, "Multiparameter
  hypothesis testing and acceptance sampling").  So the pooled lower bound is
  ``min_s lo_s`` with each ``lo_s`` a one-sided (1−α) bound: if the worst run sits
  at t, its own bound clears t with probability ≤ α, whatever the other runs do
  and however the runs' items are correlated (they share the eval items).
* **FAIL side (Bonferroni).**  ``min_s hi_s`` is an upper bound for
  ``min_s θ_s`` only if every run's bound holds at once: each ``hi_s`` is taken at
  α/k, so a FAIL claims "some run is below t" at level α.

Why not a cluster bootstrap over seeds × items: with k = 3 seeds the seed
resampling has 10 distinct multisets, its variance is biased by (k−1)/k, and the
bootstrap distribution is too discrete to give a level-α bound; and a random-
effects t bound for the *mean* over seeds needs k − 1 = 2 degrees of freedom
(t = 2.92) and normality of run outcomes that a 0.76-vs-0.97 spread does not
support.  "Every run passes" is the claim a user of one run needs, and its test
is exact given valid per-run bounds.  :func:`simulate_worst_run` checks the
false-PASS and false-FAIL rates by Monte Carlo (``harness calibrate``, family
``worst_seed``); :func:`simulate_worst_run_paired_bounds` does the same for
*paired differences* against one shared baseline run (the code-edit SRL seeds
against the one Stage 1 model, Newcombe per seed; family ``worst_seed_paired``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided
from harness.stats.paired import paired_difference_estimate
from harness.stats.proportion import proportion_estimate

__all__ = [
    "MEASURED_SPREAD",
    "WorstRunCheck",
    "simulate_worst_run",
    "simulate_worst_run_bounds",
    "simulate_worst_run_paired_bounds",
    "worst_run_estimate",
]

#: Run-to-run spread of the circuit-breaker arm's correct-behaviour rate over its 3
#: seeds, as offsets above the worst seed, measured on this phase (docs/circuit_breaker.md,
#: "Seeds"); the calibration family ``worst_seed`` simulates it.
MEASURED_SPREAD: tuple[float, ...] = (0.0, 0.1025, 0.1175)  # cb: 0.5775 / 0.68 / 0.695


def worst_run_estimate(
    pass_side: Sequence[Estimate],
    fail_side: Sequence[Estimate],
    *,
    greater: bool,
    alpha: float,
    labels: Sequence[str] | None = None,
) -> Estimate:
    """Combine per-run estimates into bounds on the worst run's metric.

    ``pass_side[s]`` is run ``s``'s estimate with one-sided (1−α) bounds (two-sided
    ``2α``); ``fail_side[s]`` the same run at one-sided α/k (two-sided ``2α/k``).
    For a "≥" gate (``greater``) the result bounds ``min_s θ_s``: lower bound
    ``min lo`` from ``pass_side``, upper bound ``min hi`` from ``fail_side``; for a
    "≤" gate it bounds ``max_s θ_s`` symmetrically.  The returned estimate has
    ``alpha = 2α`` (each side one-sided ≤ α), so :func:`harness.decision.decide`
    accepts it at the gate's level.
    """
    k = len(pass_side)
    if k == 0 or len(fail_side) != k:
        raise StatsError(
            f"worst-run estimate needs one pass-side and one fail-side estimate per run; got "
            f"{len(pass_side)} and {len(fail_side)}"
        )
    if not 0.0 < alpha < 0.5:
        raise StatsError(f"alpha={alpha!r} must be a one-sided level in (0, 0.5)")
    for name, group, want in (("pass", pass_side, alpha), ("fail", fail_side, alpha / k)):
        for e in group:
            side = e.alpha / 2.0 if e.sided is Sided.TWO else e.alpha
            if side > want * (1 + 1e-9):
                raise StatsError(
                    f"worst-run estimate: a {name}-side estimate has one-sided error {side:g} but "
                    f"needs ≤ {want:g}; compute it with alpha={2 * want:g} (two-sided)"
                )
    pick = min if greater else max
    values = [e.value for e in pass_side]
    if greater:
        lo, hi = min(e.lo for e in pass_side), min(e.hi for e in fail_side)
    else:
        lo, hi = max(e.lo for e in fail_side), max(e.hi for e in pass_side)
    names = list(labels) if labels is not None else [f"run{i}" for i in range(k)]
    return Estimate(
        value=pick(values),
        lo=min(lo, pick(values)),
        hi=max(hi, pick(values)),
        n=sum(e.n for e in pass_side),
        method=(
            f"worst of {k} runs ({'min' if greater else 'max'}): each run's "
            f"{pass_side[0].method} bound at α on the PASS side (intersection–union), "
            f"at α/{k} on the FAIL side (Bonferroni)"
        ),
        alpha=2 * alpha,
        sided=Sided.TWO,
        extra={
            "runs": {
                name: {
                    "value": e.value,
                    "lo": e.lo,
                    "hi": e.hi,
                    "n": e.n,
                    "lo_fail_side": f.lo,
                    "hi_fail_side": f.hi,
                }
                for name, e, f in zip(names, pass_side, fail_side, strict=True)
            },
            "k": k,
            "mean_over_runs": float(np.mean(values)),
        },
    )


@dataclass(frozen=True)
class WorstRunCheck:
    """Monte-Carlo rates of the worst-run rule with the worst run exactly on the threshold."""

    k: int
    n: int
    reps: int
    threshold: float
    rates: tuple[float, ...]
    item_correlation: float
    false_pass: float  # lower bound ≥ threshold although min θ_s = threshold
    false_fail: float  # upper bound < threshold although min θ_s = threshold
    coverage: float  # lo ≤ min θ_s ≤ hi


def _correlated_counts(
    rates: Sequence[float], n: int, reps: int, rho: float, rng: np.random.Generator
) -> np.ndarray:
    """Success counts (reps × k) of k runs on the *same* n items.

    Item i has a latent difficulty z_i shared by every run (correlation ``rho``
    between runs' latent scores); run s succeeds when its latent score is below
    Φ⁻¹(θ_s), so each run's marginal rate is exactly θ_s.
    """
    k = len(rates)
    cut = special.ndtri(np.asarray(rates, dtype=float))
    out = np.empty((reps, k), dtype=np.int64)
    for r in range(reps):
        z = rng.standard_normal(n)
        e = rng.standard_normal((k, n))
        latent = math.sqrt(rho) * z + math.sqrt(1 - rho) * e
        out[r] = (latent < cut[:, None]).sum(axis=1)
    return out


def simulate_worst_run_bounds(
    *,
    threshold: float,
    spread: Sequence[float],
    n: int,
    reps: int,
    alpha: float,
    item_correlation: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Worst-run bounds ``(lo, hi, rates)`` on simulated proportions (Clopper–Pearson, the
    circuit-breaker gates' method), through :func:`worst_run_estimate` itself.

    ``spread`` holds each run's offset above the worst one (one entry is 0; the
    run-to-run spread measured on the real phase): the runs' true rates are
    ``threshold + spread`` (capped below 1), so the claim "every run ≥ threshold"
    is exactly on its boundary.
    """
    if not spread or min(spread) != 0.0:
        raise StatsError(f"spread={list(spread)} must be offsets ≥ 0 with the worst run at 0")
    rates = tuple(min(threshold + s, 1 - 1e-9) for s in spread)
    k = len(rates)
    counts = _correlated_counts(rates, n, reps, item_correlation, rng)
    lo, hi = np.empty(reps), np.empty(reps)
    for r in range(reps):  # the same code path a gate uses: per-run estimates, then combine
        runs = [int(c) for c in counts[r]]
        est = worst_run_estimate(
            [proportion_estimate(c, n, alpha=2 * alpha) for c in runs],
            [proportion_estimate(c, n, alpha=2 * alpha / k) for c in runs],
            greater=True,
            alpha=alpha,
        )
        lo[r], hi[r] = est.lo, est.hi
    return lo, hi, rates


def simulate_worst_run(
    *,
    threshold: float,
    spread: Sequence[float],
    n: int,
    reps: int,
    alpha: float,
    item_correlation: float,
    rng: np.random.Generator,
) -> WorstRunCheck:
    """False-PASS / false-FAIL rates of :func:`simulate_worst_run_bounds`."""
    lo, hi, rates = simulate_worst_run_bounds(
        threshold=threshold,
        spread=spread,
        n=n,
        reps=reps,
        alpha=alpha,
        item_correlation=item_correlation,
        rng=rng,
    )
    return WorstRunCheck(
        k=len(rates),
        n=n,
        reps=reps,
        threshold=threshold,
        rates=rates,
        item_correlation=item_correlation,
        false_pass=float(np.mean(lo >= threshold)),
        false_fail=float(np.mean(hi < threshold)),
        coverage=float(np.mean((lo <= threshold) & (threshold <= hi))),
    )


def _paired_tables(
    base_rate: float,
    rates: Sequence[float],
    n: int,
    reps: int,
    rho: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Paired 2×2 tables (reps × k × [both, run only, baseline only, neither]) of k runs
    against one baseline run on the same n items (latent item difficulty shared with
    correlation ``rho``, as :func:`_correlated_counts`; every marginal rate exact)."""
    k = len(rates)
    cut = special.ndtri(np.asarray([base_rate, *rates], dtype=float))[:, None]
    out = np.empty((reps, k, 4), dtype=np.int64)
    for r in range(reps):
        z = rng.standard_normal(n)
        hit = math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.standard_normal((k + 1, n)) < cut
        b, c = hit[0], hit[1:]
        out[r, :, 0] = (c & b).sum(axis=1)
        out[r, :, 1] = (c & ~b).sum(axis=1)
        out[r, :, 2] = (~c & b).sum(axis=1)
        out[r, :, 3] = (~c & ~b).sum(axis=1)
    return out


def simulate_worst_run_paired_bounds(
    *,
    base_rate: float,
    spread: Sequence[float],
    n: int,
    reps: int,
    alpha: float,
    item_correlation: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Worst-run bounds ``(lo, hi, rates)`` on simulated paired differences run − baseline.

    Every run is paired with the *same* baseline run on the same items (the code-edit
    gate ``srl_vs_sft_success``: k GRPO seeds against the one Stage 1 model), so the
    runs' differences are correlated through the baseline as well as the items.  Each
    run's estimate is the gate's own Newcombe paired interval
    (:func:`~harness.stats.paired.paired_difference_estimate`, memoised by 2×2 table: the
    interval depends on nothing else) at α and α/k, combined by
    :func:`worst_run_estimate`.  The runs' rates are ``base_rate + spread``, one spread 0:
    the worst run's true difference is exactly 0, the gate's threshold.
    """
    if not spread or min(spread) != 0.0:
        raise StatsError(f"spread={list(spread)} must be offsets ≥ 0 with the worst run at 0")
    rates = tuple(min(base_rate + s, 1 - 1e-9) for s in spread)
    k = len(rates)
    tables = _paired_tables(base_rate, rates, n, reps, item_correlation, rng)
    memo: dict[tuple[int, ...], Estimate] = {}

    def est(table: np.ndarray, two_sided: float) -> Estimate:
        key = (*(int(v) for v in table), round(two_sided * 1e12))
        if key not in memo:
            a, b, c, d = key[:4]
            cand = np.array([1.0] * (a + b) + [0.0] * (c + d))
            base = np.array([1.0] * a + [0.0] * b + [1.0] * c + [0.0] * d)
            memo[key] = paired_difference_estimate(cand, base, alpha=two_sided, method="newcombe")
        return memo[key]

    lo, hi = np.empty(reps), np.empty(reps)
    for r in range(reps):
        combined = worst_run_estimate(
            [est(t, 2 * alpha) for t in tables[r]],
            [est(t, 2 * alpha / k) for t in tables[r]],
            greater=True,
            alpha=alpha,
        )
        lo[r], hi[r] = combined.lo, combined.hi
    return lo, hi, rates
