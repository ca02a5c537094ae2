import numpy as np
import pytest
from scipy import optimize, stats

from harness.errors import StatsError
from harness.metrics import estimate_metric
from harness.outcomes import Outcome
from harness.spec import GateSpec
from harness.stats.paired_ratio import (
    METHOD,
    paired_ratio_score_bounds,
    tang_score_statistic,
)
from harness.stats.ratio import ratio_paired, relative_reduction


def _restricted_score(theta: float, cells: tuple[int, int, int, int]) -> float:
    """Score statistic from a numerically constrained MLE (independent of the closed form)."""
    x = np.array(cells, dtype=float)
    n = x.sum()
    g = np.array([1 - theta, 1.0, -theta, 0.0])  # p_cand − θ p_base = g · p

    def nll(p: np.ndarray) -> float:
        return -float(np.sum(x * np.log(np.maximum(p, 1e-300))))

    res = optimize.minimize(
        nll,
        x0=np.full(4, 0.25),
        constraints=[
            {"type": "eq", "fun": lambda p: p.sum() - 1},
            {"type": "eq", "fun": lambda p: g @ p},
        ],
        bounds=[(1e-12, 1)] * 4,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    p = res.x
    var = n * ((1 - theta) ** 2 * p[0] + p[1] + theta**2 * p[2])
    return float((x[0] + x[1] - theta * (x[0] + x[2])) / np.sqrt(var))


@pytest.mark.parametrize("cells", [(90, 5, 10, 95), (40, 12, 3, 145), (20, 30, 25, 125)])
@pytest.mark.parametrize("theta", [0.6, 0.9, 1.3])
def test_closed_form_restricted_mle_matches_numerical_optimum(
    cells: tuple[int, int, int, int], theta: float
) -> None:
    a, b, c, d = (np.array([v]) for v in cells)
    closed = tang_score_statistic(np.array([theta]), a, b, c, a + b + c + d, continuity=0.0)
    assert float(closed[0]) == pytest.approx(_restricted_score(theta, cells), rel=1e-4)


def test_interval_inverts_the_corrected_statistic_and_is_nested_in_alpha() -> None:
    a, b, c, d = 90, 5, 10, 95
    lo, hi = paired_ratio_score_bounds(a, b, c, d, alpha=0.1)
    z = stats.norm.ppf(0.95)
    n = np.array([200.0])
    args = (np.array([a]), np.array([b]), np.array([c]), n)
    assert float(tang_score_statistic(lo, *args)[0]) == pytest.approx(z, abs=1e-6)
    assert float(tang_score_statistic(hi, *args)[0]) == pytest.approx(-z, abs=1e-6)
    lo2, hi2 = paired_ratio_score_bounds(a, b, c, d, alpha=0.02)
    assert lo2[0] < lo[0] < 95 / 100 < hi[0] < hi2[0]


def test_vectorized_equals_one_table_at_a_time() -> None:
    tables = np.array([[90, 5, 10, 95], [0, 0, 200, 200], [100, 0, 0, 300], [3, 1, 7, 189]])
    lo, hi = paired_ratio_score_bounds(*tables.T, alpha=0.1)
    for i, row in enumerate(tables):
        one = paired_ratio_score_bounds(*row, alpha=0.1)
        assert (one[0][0], one[1][0]) == (lo[i], hi[i])


def test_zero_candidate_successes_is_not_a_zero_width_reduction() -> None:
    """0/400 attacks succeed against 200/400: the reduction's lower bound stays below 1."""
    base = np.array([1.0] * 200 + [0.0] * 200)
    est = ratio_paired(np.zeros(400), base, alpha=0.1)
    q = 0.1 / 4
    u_cand = stats.beta.ppf(1 - q, 1, 400)
    l_base = stats.beta.ppf(q, 200, 201)
    assert est.lo == 0.0 and est.hi == pytest.approx(u_cand / l_base)
    red = relative_reduction(est)
    assert red.hi == 1.0 and 0.97 < red.lo < 1.0


def test_no_discordant_pairs_gives_a_finite_sample_interval_around_one() -> None:
    lo, hi = paired_ratio_score_bounds(100, 0, 0, 300, alpha=0.1)
    assert 0.9 < lo[0] < 1.0 < hi[0] < 1.1


def test_gate_path_uses_the_score_interval_and_refuses_the_bootstrap() -> None:
    rng = np.random.default_rng(3)
    base = (rng.random(200) < 0.6).astype(float)
    cand = base * (rng.random(200) < 0.92)
    outs = [Outcome(f"i{i}", float(v)) for i, v in enumerate(cand)]
    bouts = [Outcome(f"i{i}", float(v)) for i, v in enumerate(base)]
    gate = GateSpec(id="r", metric="ratio", direction="ge", tiers={"primary": 0.9})
    est = estimate_metric(gate, outs, alpha=0.1, baseline=bouts)
    a = int(np.sum(cand * base))
    c = int(np.sum((1 - cand) * base))
    lo, hi = paired_ratio_score_bounds(a, 0, c, 200 - a - c, alpha=0.1)
    assert est.method == METHOD and (est.lo, est.hi) == (lo[0], hi[0])
    with pytest.raises(StatsError, match=r"not calibrated for a paired ratio"):
        ratio_paired(cand, base, alpha=0.1, method="bca")
    with pytest.raises(StatsError, match=r"needs 0/1 outcomes.*false-PASSed 8 %"):
        ratio_paired(cand * 0.5 + 0.1, base + 0.1, alpha=0.1)  # continuous scores: refused


def test_errors() -> None:
    with pytest.raises(StatsError, match=r"baseline has no success"):
        paired_ratio_score_bounds(0, 3, 0, 10, alpha=0.1)
    with pytest.raises(StatsError, match=r"non-negative"):
        paired_ratio_score_bounds(-1, 3, 2, 10, alpha=0.1)
    with pytest.raises(StatsError, match=r"alpha"):
        paired_ratio_score_bounds(1, 3, 2, 10, alpha=1.5)
