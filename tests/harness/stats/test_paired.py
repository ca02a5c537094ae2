import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep

from harness.errors import StatsError
from harness.stats.paired import mcnemar_exact, newcombe_paired_ci, paired_difference_estimate


def _pairs(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    cand = np.array([1] * a + [1] * b + [0] * c + [0] * d, dtype=float)
    base = np.array([1] * a + [0] * b + [1] * c + [0] * d, dtype=float)
    return cand, base


def test_newcombe_reduces_to_independent_hybrid_score_when_phi_is_zero() -> None:
    # with a·d = b·c the correlation term vanishes and method 10 is Newcombe's
    # independent-samples hybrid score interval (statsmodels method="newcomb")
    for a, b, c, d in [(5, 5, 5, 5), (4, 8, 2, 4), (10, 30, 5, 15)]:
        n = a + b + c + d
        ref = confint_proportions_2indep(a + b, n, a + c, n, method="newcomb", alpha=0.05)
        assert newcombe_paired_ci(a, b, c, d, alpha=0.05) == pytest.approx(ref, abs=1e-10)


def test_newcombe_positive_correlation_narrows_the_interval() -> None:
    lo, hi = newcombe_paired_ci(12, 9, 2, 21, alpha=0.05)
    ref = confint_proportions_2indep(21, 44, 14, 44, method="newcomb", alpha=0.05)
    assert ref[0] < lo < 7 / 44 < hi < ref[1]


def test_mcnemar_matches_statsmodels_and_one_sided_binomial() -> None:
    cand, base = _pairs(12, 9, 2, 21)
    res = mcnemar_exact(cand, base)
    assert res["p_two_sided"] == pytest.approx(mcnemar([[12, 9], [2, 21]], exact=True).pvalue)
    assert res["p_candidate_higher"] < res["p_two_sided"] < 1
    assert res["p_candidate_lower"] > 0.9
    same = mcnemar_exact(*_pairs(3, 0, 0, 4))
    assert same["p_candidate_higher"] == 1.0


def test_binary_default_is_newcombe_with_mcnemar_extra() -> None:
    cand, base = _pairs(12, 9, 2, 21)
    est = paired_difference_estimate(cand, base, alpha=0.05)
    assert est.value == pytest.approx(7 / 44)
    assert est.method.startswith("Newcombe")
    assert "p_two_sided" in est.extra
    boot = paired_difference_estimate(cand, base, alpha=0.05, method="percentile", seed=1)
    assert "paired pair bootstrap (percentile" in boot.method
    assert boot.lo < est.value < boot.hi


def test_continuous_values_use_paired_bootstrap_and_t() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=40)
    cand = base + 0.5 + rng.normal(scale=0.1, size=40)
    est = paired_difference_estimate(cand, base, alpha=0.1)
    assert est.lo > 0.4 and est.hi < 0.6
    assert est.extra["p_paired_t_two_sided"] < 1e-10
    with pytest.raises(StatsError, match=r"newcombe"):
        paired_difference_estimate(cand, base, alpha=0.1, method="newcombe")


def test_constant_differences() -> None:
    cand, base = _pairs(5, 0, 0, 5)
    est = paired_difference_estimate(cand, base, alpha=0.1, method="bca")
    assert est.value == 0.0 and est.lo < 0 < est.hi  # exact conservative bound, not a point
    x = np.arange(5.0)
    est2 = paired_difference_estimate(x + 1, x, alpha=0.1)
    assert est2.lo == est2.hi == 1.0


def test_shape_errors() -> None:
    with pytest.raises(StatsError):
        paired_difference_estimate(np.ones(3), np.ones(4), alpha=0.1)
    with pytest.raises(StatsError):
        paired_difference_estimate(np.ones(0), np.ones(0), alpha=0.1)
    with pytest.raises(StatsError):
        newcombe_paired_ci(0, 0, 0, 0, alpha=0.1)


def test_newcombe_with_an_empty_margin() -> None:
    # candidate never succeeds: the phi correlation is undefined and set to 0
    lo, hi = newcombe_paired_ci(0, 0, 3, 5, alpha=0.1)
    assert lo < -3 / 8 < hi <= 0.0 + 1e-12
