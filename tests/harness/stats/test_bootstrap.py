import numpy as np
import pytest

from harness.errors import StatsError
from harness.stats.bootstrap import bootstrap_ci, degenerate_bounds


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis))


def test_bootstrap_is_seeded_and_labelled() -> None:
    x = np.random.default_rng(0).normal(size=50)
    a = bootstrap_ci((x,), _mean, alpha=0.1, seed=1)
    b = bootstrap_ci((x,), _mean, alpha=0.1, seed=1)
    assert (a.lo, a.hi) == (b.lo, b.hi)
    assert a.label == "task bootstrap (BCa, 2000 resamples)"
    assert a.distribution.shape == (2000,)


def test_bca_falls_back_to_percentile_when_undefined() -> None:
    # one outlier unit: the jackknife of the median-like statistic is constant → BCa NaN
    x = np.array([0.0] * 30 + [1.0])

    def med(v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.median(v, axis=axis))

    res = bootstrap_ci((x,), med, alpha=0.1, seed=0)
    assert "percentile" in res.label
    assert res.lo == 0.0


def test_bootstrap_errors() -> None:
    x = np.arange(10.0)
    with pytest.raises(StatsError, match=r"unknown bootstrap"):
        bootstrap_ci((x,), _mean, alpha=0.1, seed=0, method="studentized")
    with pytest.raises(StatsError, match=r"too few"):
        bootstrap_ci((x,), _mean, alpha=0.1, seed=0, n_resamples=10)
    with pytest.raises(StatsError, match=r"≥ 2 tasks"):
        bootstrap_ci((x[:1],), _mean, alpha=0.1, seed=0)


def test_degenerate_bounds_are_exact_binomial() -> None:
    lo, hi = degenerate_bounds(1.0, 20, alpha=0.1, lower=0.0, upper=1.0)
    assert hi == 1.0 and lo == pytest.approx(0.05 ** (1 / 20))
    lo, hi = degenerate_bounds(0.0, 20, alpha=0.1, lower=0.0, upper=1.0)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.05 ** (1 / 20))
