import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.trend import trend_estimate


def test_theil_sen_and_ols_recover_slope() -> None:
    rng = np.random.default_rng(0)
    y = 2.0 - 0.05 * np.arange(40) + rng.normal(0, 0.05, 40)
    ts = trend_estimate(y, alpha=0.1)
    assert ts.lo < -0.05 < ts.hi and ts.method == "Theil–Sen slope"
    assert ts.extra["mann_kendall_p_two_sided"] < 1e-6
    assert ts.value == pytest.approx(stats.theilslopes(y).slope)
    ols = trend_estimate(y, alpha=0.1, method="ols")
    assert ols.lo < -0.05 < ols.hi and ols.method.startswith("OLS")


def test_trend_errors_and_flat() -> None:
    flat = trend_estimate(np.ones(5), alpha=0.1)
    assert flat.value == 0.0 and flat.extra["mann_kendall_p_two_sided"] == 1.0
    with pytest.raises(StatsError):
        trend_estimate(np.ones(2), alpha=0.1)
    with pytest.raises(StatsError):
        trend_estimate(np.array([1.0, np.nan, 2.0]), alpha=0.1)
    with pytest.raises(StatsError, match=r"unknown trend method"):
        trend_estimate(np.arange(5.0), alpha=0.1, method="lowess")
