"""Estimators, confidence intervals and tests behind every gate decision.

Every estimator returns an :class:`Estimate` whose ``alpha`` is the two-sided
miscoverage of ``[lo, hi]`` (see docs/statistics.md for the conventions).
"""

from harness.stats.estimate import Estimate, Sided
from harness.stats.mean import (
    TestResult,
    mean_estimate,
    paired_ttest,
    permutation_test_means,
    welch_ttest,
)
from harness.stats.multiplicity import adjust
from harness.stats.paired import mcnemar_exact, newcombe_paired_ci, paired_difference_estimate
from harness.stats.passk import (
    pass_at_k_estimate,
    pass_at_k_unbiased,
    pass_at_k_uplift_estimate,
)
from harness.stats.power import (
    n_for_proportion,
    n_for_two_proportions,
    n_from_interval,
    n_zero_events,
    proportion_power,
)
from harness.stats.proportion import binomial_p_value, proportion_estimate, zero_event_upper
from harness.stats.quantile import iqr_outliers, quantile_estimate
from harness.stats.ratio import (
    ratio_independent,
    ratio_paired,
    relative_reduction,
    tost_paired_means,
    tost_two_proportions,
)
from harness.stats.sequential import ConfidenceSequence, SequentialResult, sequential_decide
from harness.stats.trend import trend_estimate

__all__ = [
    "ConfidenceSequence",
    "Estimate",
    "SequentialResult",
    "Sided",
    "TestResult",
    "adjust",
    "binomial_p_value",
    "iqr_outliers",
    "mcnemar_exact",
    "mean_estimate",
    "n_for_proportion",
    "n_for_two_proportions",
    "n_from_interval",
    "n_zero_events",
    "newcombe_paired_ci",
    "paired_difference_estimate",
    "paired_ttest",
    "pass_at_k_estimate",
    "pass_at_k_unbiased",
    "pass_at_k_uplift_estimate",
    "permutation_test_means",
    "proportion_estimate",
    "proportion_power",
    "quantile_estimate",
    "ratio_independent",
    "ratio_paired",
    "relative_reduction",
    "sequential_decide",
    "tost_paired_means",
    "tost_two_proportions",
    "trend_estimate",
    "welch_ttest",
    "zero_event_upper",
]
