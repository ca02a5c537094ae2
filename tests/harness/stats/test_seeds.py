"""Worst-run combination of seeded runs: the bounds, their levels, and a small MC check."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import StatsError
from harness.stats.proportion import proportion_estimate
from harness.stats.seeds import simulate_worst_run, worst_run_estimate


def _runs(counts: list[int], n: int, alpha: float) -> tuple[list, list]:  # type: ignore[type-arg]
    k = len(counts)
    return (
        [proportion_estimate(c, n, alpha=2 * alpha) for c in counts],
        [proportion_estimate(c, n, alpha=2 * alpha / k) for c in counts],
    )


def test_lower_bound_is_the_worst_runs_own_bound_and_upper_is_bonferroni() -> None:
    p, f = _runs([380, 300, 390], 400, 0.05)
    est = worst_run_estimate(p, f, greater=True, alpha=0.05, labels=["s0", "s1", "s2"])
    assert est.value == 300 / 400
    assert est.lo == p[1].lo  # intersection–union: no correction on the PASS side
    assert est.hi == f[1].hi > p[1].hi  # α/k on the FAIL side is wider
    assert est.alpha == pytest.approx(0.10)
    assert est.extra["runs"]["s1"]["value"] == 0.75
    assert est.extra["mean_over_runs"] == pytest.approx((380 + 300 + 390) / 1200)


def test_le_direction_takes_the_largest_run() -> None:
    p, f = _runs([10, 40, 20], 400, 0.05)
    est = worst_run_estimate(p, f, greater=False, alpha=0.05)
    assert est.value == 40 / 400 and est.hi == p[1].hi and est.lo == f[1].lo


def test_refuses_loose_fail_side_and_mismatched_runs() -> None:
    p, _ = _runs([300, 310], 400, 0.05)
    with pytest.raises(StatsError, match="fail-side estimate has one-sided error"):
        worst_run_estimate(p, p, greater=True, alpha=0.05)  # fail side must be at α/k
    with pytest.raises(StatsError, match="one pass-side and one fail-side"):
        worst_run_estimate(p, p[:1], greater=True, alpha=0.05)


def test_monte_carlo_false_pass_and_false_fail_stay_within_alpha() -> None:
    """Worst run exactly on the threshold, the others spread above it (as measured)."""
    for spread in ((0.0, 0.0, 0.0), (0.0, 0.1, 0.2)):
        r = simulate_worst_run(
            threshold=0.7,
            spread=spread,
            n=200,
            reps=400,
            alpha=0.05,
            item_correlation=0.5,
            rng=np.random.default_rng(7),
        )
        se = (0.05 * 0.95 / r.reps) ** 0.5
        assert r.false_pass <= 0.05 + 3 * se and r.false_fail <= 0.05 + 3 * se, r


def test_paired_runs_against_one_baseline_stay_within_alpha() -> None:
    """k paired runs vs the same baseline (the code-edit SRL seeds vs Stage 1), the worst
    run's true difference exactly 0: both error rates within α (Monte Carlo)."""
    from harness.stats.seeds import simulate_worst_run_paired_bounds

    for base_rate, spread in ((0.02, (0.0, 0.1, 0.2)), (0.25, (0.0, 0.1, 0.2))):
        lo, hi, rates = simulate_worst_run_paired_bounds(
            base_rate=base_rate,
            spread=spread,
            n=106,
            reps=400,
            alpha=0.05,
            item_correlation=0.5,
            rng=np.random.default_rng(11),
        )
        assert rates[0] == pytest.approx(base_rate) and len(lo) == len(hi) == 400
        se = (0.05 * 0.95 / 400) ** 0.5
        assert float(np.mean(lo >= 0.0)) <= 0.05 + 3 * se
        assert float(np.mean(hi < 0.0)) <= 0.05 + 3 * se
    with pytest.raises(StatsError, match="worst run at 0"):
        simulate_worst_run_paired_bounds(
            base_rate=0.1,
            spread=(0.1, 0.2),
            n=10,
            reps=1,
            alpha=0.05,
            item_correlation=0.5,
            rng=np.random.default_rng(0),
        )
