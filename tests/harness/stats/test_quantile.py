import math

import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.quantile import iqr_outliers, quantile_estimate


def test_order_statistic_interval_matches_binomial_ranks() -> None:
    x = np.arange(1.0, 201.0)  # sorted values 1..200, so a value is its own rank
    est = quantile_estimate(x, q=0.95, alpha=0.1)
    # exact: lower rank r has P(Bin(200, .95) ≥ r) ≥ 0.95 ... checked against scipy directly
    ci = stats.quantile_test(x, q=est.value, p=0.95).confidence_interval(0.9)
    assert (est.lo, est.hi) == (ci.low, ci.high)
    assert est.lo < est.value < est.hi
    assert est.extra["unbounded_side"] is None


def test_small_n_marks_upper_side_unbounded() -> None:
    est = quantile_estimate(np.arange(1.0, 31.0), q=0.95, alpha=0.1)
    assert est.hi == math.inf and est.extra["unbounded_side"] == "upper"
    assert "too small" in est.extra["note"]
    low = quantile_estimate(np.arange(1.0, 31.0), q=0.05, alpha=0.1)
    assert low.lo == -math.inf and low.extra["unbounded_side"] == "lower"


def test_iqr_outliers() -> None:
    x = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 9.0])
    assert iqr_outliers(x) == [5]
    assert quantile_estimate(x, q=0.5, alpha=0.5).extra["outliers"] == 1
    assert iqr_outliers(np.array([])) == []


def test_bad_input() -> None:
    with pytest.raises(StatsError):
        quantile_estimate(np.array([]), q=0.5, alpha=0.1)
    with pytest.raises(StatsError):
        quantile_estimate(np.array([1.0, np.nan]), q=0.5, alpha=0.1)
    with pytest.raises(StatsError, match=r"q=1.5"):
        quantile_estimate(np.array([1.0]), q=1.5, alpha=0.1)
