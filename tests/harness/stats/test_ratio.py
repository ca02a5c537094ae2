import math

import numpy as np
import pytest

from harness.errors import StatsError
from harness.stats.ratio import (
    ratio_independent,
    ratio_p_value_independent,
    ratio_paired,
    relative_reduction,
    tost_paired_means,
    tost_two_proportions,
)


def _binary(k: int, n: int) -> np.ndarray:
    return np.array([1.0] * k + [0.0] * (n - k))


def test_independent_ratio_score_interval() -> None:
    est = ratio_independent(_binary(45, 100), _binary(50, 100), alpha=0.1)
    assert est.value == pytest.approx(0.9)
    assert est.lo == pytest.approx(0.7024, abs=1e-3) and est.hi == pytest.approx(1.1502, abs=1e-3)
    assert est.extra["paired"] is False
    zero = ratio_independent(_binary(0, 100), _binary(50, 100), alpha=0.1)
    assert zero.lo == 0.0 and zero.value == 0.0
    with pytest.raises(StatsError, match=r"baseline has 0 events"):
        ratio_independent(_binary(3, 10), _binary(0, 10), alpha=0.1)
    with pytest.raises(StatsError, match=r"0/1"):
        ratio_independent(np.array([0.5, 1.0]), _binary(3, 10), alpha=0.1)
    with pytest.raises(StatsError, match=r"non-empty"):
        ratio_independent(np.array([]), _binary(3, 10), alpha=0.1)


def test_independent_ratio_p_value_is_consistent_with_interval() -> None:
    c, b = _binary(90, 100), _binary(80, 100)
    est = ratio_independent(c, b, alpha=0.1)
    for r0 in (0.9, 1.0, 1.05):
        p = ratio_p_value_independent(c, b, ratio0=r0, larger=True)
        assert (p <= 0.05) == (est.lo > r0)
    assert ratio_p_value_independent(c, b, ratio0=2.0, larger=False) < 0.05
    with pytest.raises(StatsError):
        ratio_p_value_independent(c, b, ratio0=0.0, larger=True)


def test_paired_ratio_and_reduction() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random(300) < 0.5).astype(float)
    cand = base * (rng.random(300) < 0.5)  # attack success halved on the same prompts
    est = ratio_paired(cand, base, alpha=0.1, seed=0)
    assert est.lo < est.value < est.hi and est.extra["paired"] is True
    red = relative_reduction(est)
    assert red.value == pytest.approx(1 - est.value)
    assert red.lo == pytest.approx(1 - est.hi) and red.hi == pytest.approx(1 - est.lo)
    assert 0.35 < red.value < 0.65
    with pytest.raises(StatsError, match=r"baseline mean is 0"):
        ratio_paired(cand, np.zeros(300), alpha=0.1)
    with pytest.raises(StatsError):
        ratio_paired(cand, base[:10], alpha=0.1)
    with pytest.raises(StatsError, match=r"needs 0/1 outcomes"):
        ratio_paired(-cand, base, alpha=0.1)


def test_tost_helpers() -> None:
    c, b = _binary(500, 1000), _binary(505, 1000)
    assert tost_two_proportions(c, b, low=-0.05, upp=0.05).p_value < 0.05
    assert tost_two_proportions(c, b, low=-0.001, upp=0.001).p_value > 0.05
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    res = tost_paired_means(x + 0.01, x, low=-0.1, upp=0.1)
    assert res.p_value < 0.05 and res.method == "TOST paired t"
    with pytest.raises(StatsError):
        tost_two_proportions(c, b, low=0.1, upp=0.0)
    with pytest.raises(StatsError):
        tost_paired_means(x, x[:5], low=-1, upp=1)
    with pytest.raises(StatsError):
        tost_paired_means(x, x, low=1, upp=-1)
    assert not math.isnan(res.low)
