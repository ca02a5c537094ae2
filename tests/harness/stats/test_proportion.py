import math

import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided
from harness.stats.proportion import binomial_p_value, proportion_estimate, zero_event_upper


def test_clopper_pearson_zero_events_at_2995_bounds_one_in_a_thousand() -> None:
    est = proportion_estimate(0, 2995, alpha=0.10)
    assert est.value == 0.0 and est.lo == 0.0
    assert est.hi <= 0.001
    assert est.extra["zero_event_upper"] == pytest.approx(est.hi)
    assert proportion_estimate(0, 2994, alpha=0.10).hi > 0.001
    assert est.method == "Clopper–Pearson exact"


def test_clopper_pearson_matches_beta_quantiles() -> None:
    est = proportion_estimate(7, 20, alpha=0.05)
    assert est.lo == pytest.approx(stats.beta.ppf(0.025, 7, 14))
    assert est.hi == pytest.approx(stats.beta.ppf(0.975, 8, 13))
    assert est.sided is Sided.TWO and est.n == 20


def test_zero_event_upper_is_rule_of_three() -> None:
    assert zero_event_upper(1000, alpha=0.05) == pytest.approx(1 - 0.05 ** (1 / 1000))
    assert zero_event_upper(1000, alpha=0.05) == pytest.approx(3 / 1000, rel=0.01)
    with pytest.raises(StatsError):
        zero_event_upper(0, alpha=0.05)
    with pytest.raises(StatsError):
        zero_event_upper(10, alpha=1.5)


@pytest.mark.parametrize("method,label", [("wilson", "Wilson score"), ("jeffreys", "Jeffreys")])
def test_other_methods(method: str, label: str) -> None:
    est = proportion_estimate(30, 50, alpha=0.05, method=method)
    assert est.method == label
    assert est.lo < 0.6 < est.hi


def test_jeffreys_boundary_convention() -> None:
    assert proportion_estimate(0, 10, alpha=0.1, method="jeffreys").lo == 0.0
    assert proportion_estimate(10, 10, alpha=0.1, method="jeffreys").hi == 1.0


def test_bad_inputs() -> None:
    with pytest.raises(StatsError, match=r"n ≥ 1"):
        proportion_estimate(0, 0, alpha=0.05)
    with pytest.raises(StatsError, match=r"successes"):
        proportion_estimate(5, 3, alpha=0.05)
    with pytest.raises(StatsError, match=r"alpha"):
        proportion_estimate(1, 3, alpha=0.0)
    with pytest.raises(StatsError, match=r"unknown proportion CI method 'wald'"):
        proportion_estimate(1, 3, alpha=0.05, method="wald")
    with pytest.raises(StatsError, match=r"threshold"):
        binomial_p_value(1, 3, threshold=1.5, greater=True)


def test_binomial_p_value_agrees_with_clopper_pearson_bound() -> None:
    # p ≤ α  ⇔  the one-sided (1−α) CP bound excludes the threshold
    for k, n, t in [(70, 100, 0.6), (55, 100, 0.6), (0, 3000, 0.001), (2, 3000, 0.001)]:
        est = proportion_estimate(k, n, alpha=0.10)
        assert (binomial_p_value(k, n, threshold=t, greater=True) <= 0.05) == (est.lo >= t)
        assert (binomial_p_value(k, n, threshold=t, greater=False) <= 0.05) == (est.hi <= t)


def test_estimate_roundtrip_and_validation() -> None:
    est = proportion_estimate(3, 10, alpha=0.05)
    again = Estimate.from_dict(est.to_dict())
    assert again == est and math.isclose(again.confidence, 0.95)
    with pytest.raises(ValueError):
        Estimate(value=0.5, lo=0.6, hi=0.4, n=1, method="x", alpha=0.05)
    with pytest.raises(ValueError):
        Estimate(value=0.5, lo=0.4, hi=0.6, n=1, method="x", alpha=0.0)
