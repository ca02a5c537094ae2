import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided
from harness.stats.power import (
    n_for_proportion,
    n_for_two_proportions,
    n_from_interval,
    n_zero_events,
    proportion_power,
)
from harness.stats.proportion import proportion_estimate


def test_zero_events_needs_2995_for_one_in_a_thousand() -> None:
    assert n_zero_events(0.001, alpha=0.05) == 2995
    assert n_zero_events(0.01, alpha=0.05) == 299
    # and 500 prompts can never support ≤ 0.1 %: even 0/500 has a bound of ~0.6 %
    assert proportion_estimate(0, 500, alpha=0.10).hi > 0.005
    with pytest.raises(StatsError):
        n_zero_events(0.0, alpha=0.05)
    with pytest.raises(StatsError):
        n_zero_events(0.1, alpha=1.0)


def test_planner_zero_true_rate_is_zero_event_n() -> None:
    assert n_for_proportion(0.0, 0.001, alpha=0.05, power=0.8) == 2995
    assert n_for_proportion(1.0, 0.999, alpha=0.05, power=0.8) == 2995


def test_planner_power_is_reached_exactly_and_not_before() -> None:
    n = n_for_proportion(0.7, 0.6, alpha=0.05, power=0.8)
    assert n is not None
    assert proportion_power(n, true_rate=0.7, threshold=0.6, alpha=0.05) >= 0.8
    ns = np.arange(1, n)
    assert all(proportion_power(int(m), true_rate=0.7, threshold=0.6, alpha=0.05) < 0.8 for m in ns)
    # the FAIL side works too
    n2 = n_for_proportion(0.5, 0.6, alpha=0.05, power=0.8)
    assert n2 is not None and proportion_power(n2, true_rate=0.5, threshold=0.6, alpha=0.05) >= 0.8


def test_power_matches_direct_binomial_computation() -> None:
    n, t, p, a = 200, 0.6, 0.7, 0.05
    k = min(k for k in range(n + 1) if stats.binom.sf(k - 1, n, t) <= a)
    assert proportion_power(n, true_rate=p, threshold=t, alpha=a) == pytest.approx(
        stats.binom.sf(k - 1, n, p)
    )
    assert proportion_power(10, true_rate=t, threshold=t, alpha=a) == 0.0
    with pytest.raises(StatsError):
        proportion_power(0, true_rate=p, threshold=t, alpha=a)


def test_planner_edge_cases() -> None:
    assert n_for_proportion(0.6, 0.6) is None
    assert n_for_proportion(0.3, 0.0) is not None
    # very close rates fall back to the normal approximation (huge n)
    big = n_for_proportion(0.6001, 0.6)
    assert big is not None and big > 1_000_000
    for bad in (dict(alpha=0.7), dict(power=1.0)):
        with pytest.raises(StatsError):
            n_for_proportion(0.5, 0.6, **bad)  # type: ignore[arg-type]
    with pytest.raises(StatsError, match=r"true_rate"):
        n_for_proportion(1.5, 0.6)


def test_two_proportions_uses_cohens_h() -> None:
    n = n_for_two_proportions(0.5, 0.4, alpha=0.05, power=0.8)
    assert n is not None and 280 < n < 320  # ~ (1.645+0.842)^2 / h^2 with h≈0.2
    assert n_for_two_proportions(0.5, 0.5) is None


def test_n_from_interval() -> None:
    est = Estimate(value=0.55, lo=0.45, hi=0.65, n=100, method="t", alpha=0.1)
    n = n_from_interval(est, 0.5, alpha=0.05, power=0.8)
    assert n is not None and n > 100
    assert n_from_interval(est, 0.55) is None
    flat = Estimate(value=1.0, lo=1.0, hi=1.0, n=10, method="count", alpha=0.1)
    assert n_from_interval(flat, 0.5) is None
    low = Estimate(value=0.55, lo=0.5, hi=1.0, n=100, method="t", alpha=0.05, sided=Sided.LOWER)
    up = Estimate(value=0.55, lo=0.0, hi=0.6, n=100, method="t", alpha=0.05, sided=Sided.UPPER)
    assert n_from_interval(low, 0.6) is not None and n_from_interval(up, 0.5) is not None
    inf = Estimate(value=0.55, lo=0.5, hi=float("inf"), n=100, method="q", alpha=0.05)
    assert n_from_interval(inf, 0.5) is None


def test_planner_scans_past_the_first_chunk() -> None:
    n = n_for_proportion(0.6, 0.605, alpha=0.05, power=0.8)
    assert n is not None and n > 50_000
    assert proportion_power(n, true_rate=0.6, threshold=0.605, alpha=0.05) >= 0.8
