"""Estimators, confidence intervals and tests behind every gate decision.

Every estimator returns an :class:`Estimate` whose ``alpha`` is the two-sided
miscoverage of ``[lo, hi]`` (see docs/statistics.md for the conventions).

Submodules load on first attribute access: statsmodels and pandas cost seconds to
import, and every xdist worker imports ``harness.decision`` (which needs only
:class:`Estimate`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.stats.estimate import Estimate, Sided

_LAZY: dict[str, str] = {
    "ConfidenceSequence": "harness.stats.sequential",
    "SequentialResult": "harness.stats.sequential",
    "TestResult": "harness.stats.mean",
    "adjust": "harness.stats.multiplicity",
    "betting_mean_estimate": "harness.stats.betting",
    "binomial_p_value": "harness.stats.proportion",
    "iqr_outliers": "harness.stats.quantile",
    "mcnemar_exact": "harness.stats.paired",
    "mean_estimate": "harness.stats.mean",
    "n_for_proportion": "harness.stats.power",
    "n_for_two_proportions": "harness.stats.power",
    "n_from_interval": "harness.stats.power",
    "n_zero_events": "harness.stats.power",
    "newcombe_paired_ci": "harness.stats.paired",
    "paired_difference_estimate": "harness.stats.paired",
    "paired_ratio_score_bounds": "harness.stats.paired_ratio",
    "paired_ttest": "harness.stats.mean",
    "pass_at_k_estimate": "harness.stats.passk",
    "pass_at_k_unbiased": "harness.stats.passk",
    "pass_at_k_uplift_estimate": "harness.stats.passk",
    "permutation_test_means": "harness.stats.mean",
    "proportion_estimate": "harness.stats.proportion",
    "proportion_power": "harness.stats.power",
    "quantile_estimate": "harness.stats.quantile",
    "ratio_independent": "harness.stats.ratio",
    "ratio_paired": "harness.stats.ratio",
    "relative_reduction": "harness.stats.ratio",
    "sequential_decide": "harness.stats.sequential",
    "tost_paired_means": "harness.stats.ratio",
    "tost_two_proportions": "harness.stats.ratio",
    "trend_estimate": "harness.stats.trend",
    "welch_ttest": "harness.stats.mean",
    "zero_event_upper": "harness.stats.proportion",
}

if TYPE_CHECKING:
    from harness.stats.betting import betting_mean_estimate
    from harness.stats.mean import (
        TestResult,
        mean_estimate,
        paired_ttest,
        permutation_test_means,
        welch_ttest,
    )
    from harness.stats.multiplicity import adjust
    from harness.stats.paired import mcnemar_exact, newcombe_paired_ci, paired_difference_estimate
    from harness.stats.paired_ratio import paired_ratio_score_bounds
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
    "betting_mean_estimate",
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
    "paired_ratio_score_bounds",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
