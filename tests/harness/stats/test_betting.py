import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.betting import betting_bounds, betting_mean_estimate


def test_false_pass_stays_below_alpha_on_skewed_values() -> None:
    """Mean exactly on 0.4: the 90/10-style mixture that made the t bound false-PASS 8–12 %."""
    rng = np.random.default_rng(0)
    reps, n = 3000, 30
    w = (0.4 - 0.1) / (40 / 41 - 0.1)
    high = rng.random((reps, n)) < w
    x = np.where(high, rng.beta(40, 1, (reps, n)), rng.beta(2, 18, (reps, n)))
    lo, hi = betting_bounds(x, alpha=0.1)
    se = np.sqrt(0.05 * 0.95 / reps)
    assert np.mean(hi <= 0.4) <= 0.05 + 2 * se and np.mean(lo >= 0.4) <= 0.05 + 2 * se
    assert np.all(lo <= x.mean(axis=1)) and np.all(x.mean(axis=1) <= hi)


def test_width_is_close_to_the_t_interval_at_moderate_n() -> None:
    rng = np.random.default_rng(1)
    x = rng.beta(2, 5, 300)
    est = betting_mean_estimate(x, alpha=0.1)
    t_lo, t_hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert est.lo < x.mean() < est.hi
    assert (est.hi - est.lo) < 1.6 * (t_hi - t_lo)  # measured 1.5× here: the price of validity


def test_rows_are_independent_and_rescaling_is_exact() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((3, 25))
    lo, hi = betting_bounds(x, alpha=0.1)
    one = betting_bounds(x[1:2], alpha=0.1)
    assert (one[0][0], one[1][0]) == (lo[1], hi[1])
    e = betting_mean_estimate(10 + 5 * x[1], alpha=0.1, lower=10, upper=15)
    assert e.lo == pytest.approx(10 + 5 * lo[1]) and e.hi == pytest.approx(10 + 5 * hi[1])


def test_constant_sample_is_not_a_point() -> None:
    est = betting_mean_estimate(np.ones(20), alpha=0.1)
    assert est.hi == 1.0 and 0.5 < est.lo < 1.0


def test_errors() -> None:
    with pytest.raises(StatsError, match=r"outside the declared range \[0, 1\]"):
        betting_mean_estimate(np.array([0.5, 1.2]), alpha=0.1)
    with pytest.raises(StatsError, match=r"lower < upper"):
        betting_mean_estimate(np.array([0.5]), alpha=0.1, lower=1, upper=0)
    with pytest.raises(StatsError, match=r"\(R, n\)"):
        betting_bounds(np.array([0.5]), alpha=0.1)
    with pytest.raises(StatsError, match=r"alpha"):
        betting_bounds(np.array([[0.5]]), alpha=0.0)
