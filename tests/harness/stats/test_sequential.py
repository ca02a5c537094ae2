"""Monte-Carlo checks of the hand-written betting confidence sequence."""

import itertools

import numpy as np
import pytest

from harness.errors import StatsError
from harness.stats.sequential import (
    ConfidenceSequence,
    _BettingState,
    coverage_paths,
    sequential_decide,
)


def _time_uniform_miscoverage(p: float, reps: int, n: int, alpha: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    x = (rng.random((reps, n)) < p).astype(float)
    lo, hi = coverage_paths(x, alpha=alpha, grid=201)
    return float(np.mean(np.any((lo > p) | (hi < p), axis=1)))


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_time_uniform_coverage_reduced(p: float) -> None:
    reps, alpha = 300, 0.1
    miss = _time_uniform_miscoverage(p, reps, 200, alpha, seed=1)
    mc = 3 * np.sqrt(alpha * (1 - alpha) / reps)
    assert miss <= alpha + mc


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.001, 0.1, 0.3, 0.5, 0.9])
def test_time_uniform_coverage_full(p: float) -> None:
    reps, alpha = 2000, 0.1
    miss = _time_uniform_miscoverage(p, reps, 1000, alpha, seed=2)
    assert miss <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)


@pytest.mark.parametrize("p", [0.02, 0.5, 0.97])
def test_windowed_blocks_equal_the_full_grid_update(p: float) -> None:
    """Blocks of streams and a grid window that drops dead candidates change no bound."""
    rng = np.random.default_rng(5)
    x = (rng.random((600, 150)) < p).astype(float)  # > 2 blocks of 256 streams
    x[0] = rng.random(150)  # continuous values in [0, 1] too
    state = _BettingState(600, alpha=0.1, grid=201, c=0.5, full_grid=True)
    ref_lo, ref_hi = np.empty_like(x), np.empty_like(x)
    for j in range(x.shape[1]):
        state.update(x[:, j])
        ref_lo[:, j], ref_hi[:, j] = state.lo, state.hi
    lo, hi = coverage_paths(x, alpha=0.1, grid=201)
    assert np.array_equal(lo, ref_lo) and np.array_equal(hi, ref_hi)


def test_single_stream_matches_batch_and_shrinks() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random(400) < 0.3).astype(float)
    cs = ConfidenceSequence(alpha=0.1, grid=201)
    widths = []
    for xi in x:
        lo, hi = cs.update(xi)
        widths.append(hi - lo)
    blo, bhi = coverage_paths(x[None, :], alpha=0.1, grid=201)
    assert (cs.lo, cs.hi) == (blo[0, -1], bhi[0, -1])
    assert widths[-1] < 0.2 and all(a >= b for a, b in itertools.pairwise(widths))
    est = cs.estimate()
    assert est.n == 400 and est.lo <= est.value <= est.hi and "betting" in est.method
    assert ConfidenceSequence(alpha=0.1).extend([0.2, 0.4])[0] == 0.0


def test_sequential_decide_stops_early_and_keeps_alpha() -> None:
    rng = np.random.default_rng(4)
    res = sequential_decide(
        iter(rng.random(3000) < 0.8), threshold=0.6, direction="ge", alpha=0.05, max_n=3000
    )
    assert res.verdict == "PASS" and res.fraction_used < 0.2
    res = sequential_decide(
        iter(rng.random(3000) < 0.4), threshold=0.6, direction="ge", alpha=0.05, max_n=3000
    )
    assert res.verdict == "FAIL"
    res = sequential_decide(
        iter(np.zeros(3000)), threshold=0.01, direction="le", alpha=0.05, max_n=3000
    )
    assert res.verdict == "PASS"
    res = sequential_decide(
        iter(rng.random(50) < 0.5), threshold=0.5, direction="le", alpha=0.05, max_n=50
    )
    assert res.verdict == "INCONCLUSIVE" and res.n_used == 50
    # false-PASS at the threshold stays ≤ α (reduced Monte-Carlo)
    passes = sum(
        sequential_decide(
            iter(rng.random(300) < 0.5),
            threshold=0.5,
            direction="ge",
            alpha=0.05,
            max_n=300,
            grid=201,
        ).verdict
        == "PASS"
        for _ in range(60)
    )
    assert passes / 60 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 60)


def test_bad_inputs() -> None:
    with pytest.raises(StatsError):
        ConfidenceSequence(alpha=0.0)
    with pytest.raises(StatsError):
        ConfidenceSequence(alpha=0.1, grid=5)
    with pytest.raises(StatsError):
        ConfidenceSequence(alpha=0.1, c=1.5)
    with pytest.raises(StatsError, match=r"outside"):
        ConfidenceSequence(alpha=0.1).update(1.5)
    with pytest.raises(StatsError):
        ConfidenceSequence(alpha=0.1).estimate()
    with pytest.raises(StatsError):
        coverage_paths(np.ones(3), alpha=0.1)
    for kw in (dict(direction="gt"), dict(max_n=0), dict(alpha=0.6)):
        args = dict(threshold=0.5, direction="ge", alpha=0.05, max_n=10) | kw
        with pytest.raises(StatsError):
            sequential_decide(iter([1.0]), **args)  # type: ignore[arg-type]
    with pytest.raises(StatsError, match=r"empty"):
        sequential_decide(iter([]), threshold=0.5, direction="ge", alpha=0.05, max_n=10)
