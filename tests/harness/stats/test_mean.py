import math

import numpy as np
import pytest
from scipy import stats

from harness.errors import StatsError
from harness.stats.mean import mean_estimate, paired_ttest, permutation_test_means, welch_ttest


def test_t_interval_matches_textbook() -> None:
    x = np.array([2.0, 4.0, 4.0, 5.0, 7.0, 8.0])
    est = mean_estimate(x, alpha=0.05)
    half = stats.t.ppf(0.975, 5) * x.std(ddof=1) / math.sqrt(6)
    assert (est.lo, est.hi) == pytest.approx((5 - half, 5 + half))
    flat = mean_estimate(np.ones(4), alpha=0.05)
    assert flat.lo == flat.hi == 1.0 and flat.extra["zero_variance"] is True
    with pytest.raises(StatsError):
        mean_estimate(np.ones(1), alpha=0.05)
    with pytest.raises(StatsError):
        mean_estimate(np.array([1.0, np.inf]), alpha=0.05)


def test_welch_paired_and_permutation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 60)
    b = rng.normal(0.0, 3.0, 80)
    w = welch_ttest(a, b, alternative="greater")
    assert w.p_value == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
    )
    assert w.method == "Welch two-sample t" and w.lo < w.difference
    p = paired_ttest(a, a - 0.3 + rng.normal(0, 0.1, 60))
    assert p.p_value < 1e-6 and p.lo < 0.3 < p.hi
    perm = permutation_test_means(a, b, alternative="greater", n_resamples=999)
    assert perm.p_value < 0.05 and math.isnan(perm.lo)
    pp = permutation_test_means(a, a - 0.3, paired=True, n_resamples=999)
    assert pp.p_value < 0.01 and pp.method.startswith("paired")
    with pytest.raises(StatsError):
        paired_ttest(a, b)
    with pytest.raises(StatsError):
        permutation_test_means(a, b, paired=True)
    with pytest.raises(StatsError, match=r"alternative"):
        welch_ttest(a, b, alternative="bigger")
