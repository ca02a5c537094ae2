"""The decode-speed sample-size plan (harness/evaluators/compression_timing.py), no timing."""

from __future__ import annotations

import math

import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

from harness.errors import StatsError
from harness.evaluators.compression_timing import (
    MAX_PROMPTS,
    MIN_PROMPTS,
    pilot_log_speedups,
    plan_prompts,
)

LN2 = math.log(2.0)


def _speed(fp32: list[float], ternary: list[float]) -> dict[str, object]:
    """A speed measurement's shape with injected seconds per token (no timing involved)."""
    return {"wide": {"seconds_per_token": {"fp32": fp32, "ternary": ternary}}}


def test_pilot_values_are_per_prompt_log_speedups() -> None:
    values = pilot_log_speedups(_speed([0.4, 0.6], [0.1, 0.3]))
    assert values == pytest.approx([math.log(4.0), math.log(2.0)])


def test_a_quiet_machine_needs_few_prompts_a_noisy_one_more() -> None:
    quiet = pilot_log_speedups(_speed([0.40, 0.41, 0.39, 0.40, 0.42], [0.1, 0.1, 0.1, 0.1, 0.1]))
    plan = plan_prompts(quiet, threshold=LN2, alpha=0.05)
    assert plan.n == MIN_PROMPTS and not plan.capped and plan.power_at_n >= 0.8
    # the last CI run's situation: mean ln speedup ≈ 0.94, per-prompt sd ≈ 0.27-0.45
    noisy = [0.5, 1.4, 0.9, 1.2, 0.7]  # mean 0.94, sd 0.36
    planned = plan_prompts(noisy, threshold=LN2, alpha=0.05)
    assert MIN_PROMPTS < planned.n <= MAX_PROMPTS
    wider = plan_prompts([0.94 + 2 * (v - 0.94) for v in noisy], threshold=LN2, alpha=0.05)
    assert wider.n >= planned.n  # more noise, never fewer prompts


def test_the_plan_matches_the_t_test_power_it_promises() -> None:
    """With the sd correction neutralised, n is the textbook one-sided t-test sample size."""
    pilot = [LN2 + 0.5 + d for d in (-1.0, 1.0)]  # mean ln2 + 0.5, sd √2
    neutral = 1.0 - float(stats.chi2.cdf(1.0, 1))  # χ² quantile = df: the upper limit is s
    plan = plan_prompts(pilot, threshold=LN2, alpha=0.05, sd_confidence=neutral, n_max=200)
    d = 0.5 / math.sqrt(2.0)
    power = TTestPower()
    assert power.power(d, plan.n, 0.05, alternative="larger") >= 0.8
    assert power.power(d, plan.n - 1, 0.05, alternative="larger") < 0.8
    assert plan.planning_sd == pytest.approx(math.sqrt(2.0))


def test_a_pilot_below_the_threshold_is_planned_to_fail_and_one_on_it_is_capped() -> None:
    low = plan_prompts([0.2, 0.25, 0.3, 0.22, 0.28], threshold=LN2, alpha=0.05)
    assert low.n == MIN_PROMPTS  # far below ln 2: a FAIL is decided with few prompts
    on = plan_prompts(
        [LN2 - 0.01, LN2 + 0.01, LN2, LN2 - 0.02, LN2 + 0.02], threshold=LN2, alpha=0.05
    )
    assert on.n == MAX_PROMPTS and on.capped and on.power_at_n < 0.8
    constant = plan_prompts([1.0] * 5, threshold=LN2, alpha=0.05)
    assert constant.n == MIN_PROMPTS and constant.power_at_n == 1.0


@pytest.mark.parametrize("bad", [[1.0], [1.0, math.nan], []])
def test_a_bad_pilot_is_refused(bad: list[float]) -> None:
    with pytest.raises(StatsError, match="pilot values"):
        plan_prompts(bad, threshold=LN2, alpha=0.05)
