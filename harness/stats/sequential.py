"""Anytime-valid confidence sequences for a mean in [0, 1] (betting / hedged capital).

A fixed-n interval is valid only at the n fixed in advance; peeking after
every item and stopping once the bound clears the threshold inflates the
false-PASS rate far above α.  A confidence sequence (CS) is valid
*simultaneously* over all n, so a gate may stop as soon as it is decided.

Construction (Waudby-Smith & Ramdas, 2023, "Estimating means of bounded
random variables by betting", hedged capital process): for each candidate
mean m on a grid, two gamblers bet that the mean is above / below m,

    K⁺ₜ(m) = ∏ (1 + λᵢ⁺ (xᵢ − m)),   K⁻ₜ(m) = ∏ (1 − λᵢ⁻ (xᵢ − m)),

with predictable bets λᵢ = min(√(2 log(2/α) / (σ̂²ᵢ₋₁ · i · log(1+i))), c)
truncated to c/m and c/(1−m) so wealth stays positive.  Under mean m,
½K⁺ + ½K⁻ is a non-negative martingale starting at 1, so by Ville's
inequality it exceeds 1/α with probability ≤ α *ever*; the CS is the set of m
whose wealth max(½K⁺, ½K⁻) is still below 1/α, intersected over time.
This is hand-written (no library has it), so its time-uniform coverage is
checked by Monte-Carlo in the tests and in ``harness calibrate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = ["ConfidenceSequence", "SequentialResult", "coverage_paths", "sequential_decide"]

#: streams per block in :func:`coverage_paths` (benchmarks/sequential_calibration.py)
_BLOCK = 256

METHOD = "betting confidence sequence (hedged capital, Waudby-Smith–Ramdas)"


class _BettingState:
    """Wealth processes of R independent streams over a grid of candidate means.

    One implementation serves both a single live gate (R = 1) and vectorized
    Monte-Carlo calibration (R = thousands), so the code that is calibrated is
    the code that decides gates.
    """

    def __init__(
        self, reps: int, *, alpha: float, grid: int, c: float, full_grid: bool = False
    ) -> None:
        if not (0.0 < alpha < 1.0):
            raise StatsError(f"alpha={alpha!r} must lie in (0, 1)")
        if grid < 101:
            raise StatsError(f"grid={grid} is too coarse; use ≥ 101 points")
        if not (0.0 < c < 1.0):
            raise StatsError(f"bet cap c={c!r} must lie in (0, 1)")
        self.alpha = alpha
        self.c = c
        self.m = np.linspace(0.0, 1.0, grid)
        self.step = float(self.m[1] - self.m[0])
        # per-m caps keep 1 ± λ(x − m) > 0: λ⁺ ≤ c/m, λ⁻ ≤ c/(1 − m)
        with np.errstate(divide="ignore"):
            self.cap_p = np.where(self.m > 0, c / self.m, np.inf)
            self.cap_m = np.where(self.m < 1, c / (1.0 - self.m), np.inf)
        self.log_kp = np.zeros((reps, grid))
        self.log_km = np.zeros((reps, grid))
        self.log_thresh = math.log(1.0 / alpha) - math.log(0.5)  # max(½K⁺, ½K⁻) ≥ 1/α
        self.alive = np.ones((reps, grid), dtype=bool)
        self.sum = np.zeros(reps)
        self.sq = np.zeros(reps)  # Σ (xᵢ − μ̂ᵢ₋₁)² for the variance plug-in
        self.n = 0
        self.lo = np.zeros(reps)
        self.hi = np.ones(reps)
        #: grid columns [win_lo, win_hi) hold every stream's surviving candidates; a
        #: column outside is dead in every stream, and dead candidates never revive
        #: (running intersection), so their wealth is never read again
        self.win_lo, self.win_hi = 0, grid
        self.full_grid = full_grid  # update every column (the reference for the window)

    def update(self, x: np.ndarray) -> None:
        t = self.n + 1  # the bet on observation t uses data up to t − 1 only
        var = (0.25 + self.sq) / t
        lam = np.minimum(
            np.sqrt(2.0 * math.log(2.0 / self.alpha) / (var * t * math.log1p(t))), self.c
        )[:, None]
        w = slice(self.win_lo, self.win_hi)
        d = x[:, None] - self.m[None, w]
        self.log_kp[:, w] += np.log1p(np.minimum(lam, self.cap_p[None, w]) * d)
        self.log_km[:, w] += np.log1p(-np.minimum(lam, self.cap_m[None, w]) * d)
        alive = self.alive[:, w]
        alive &= np.maximum(self.log_kp[:, w], self.log_km[:, w]) < self.log_thresh
        mu_prev = (0.5 + self.sum) / t
        self.sq += (x - mu_prev) ** 2
        self.sum += x
        self.n = t
        any_alive = alive.any(axis=1)
        first = self.win_lo + np.argmax(alive, axis=1)
        last = self.win_hi - 1 - np.argmax(alive[:, ::-1], axis=1)
        if any_alive.any() and not self.full_grid:
            self.win_lo = int(first[any_alive].min())
            self.win_hi = int(last[any_alive].max()) + 1
        # the true mean may sit between grid points: widen by one grid step
        lo = np.where(any_alive, np.maximum(0.0, self.m[first] - self.step), self.hi)
        hi = np.where(any_alive, np.minimum(1.0, self.m[last] + self.step), self.lo)
        self.lo = np.maximum(self.lo, lo)  # running intersection over time
        self.hi = np.minimum(self.hi, hi)
        empty = self.lo > self.hi  # only after a ≤ α miscoverage event
        mid = (self.lo + self.hi) / 2.0
        self.lo = np.where(empty, mid, self.lo)
        self.hi = np.where(empty, mid, self.hi)


class ConfidenceSequence:
    """Time-uniform two-sided ``1−alpha`` confidence sequence for a mean in [0, 1].

    ``update(x)`` adds one observation in [0, 1] and returns the current
    ``(lo, hi)``; the probability that the true mean ever leaves ``[lo, hi]``
    is at most ``alpha``.  Each bound alone is a one-sided ``1 − alpha/2``
    anytime bound (the same two-sided convention as :class:`Estimate`).
    ``grid`` candidate means are tracked (resolution 1/(grid − 1)); ``c`` caps
    the bet size.
    """

    def __init__(self, *, alpha: float, grid: int = 2001, c: float = 0.5) -> None:
        self._state = _BettingState(1, alpha=alpha, grid=grid, c=c)
        self.alpha = alpha

    @property
    def n(self) -> int:
        return self._state.n

    @property
    def lo(self) -> float:
        return float(self._state.lo[0])

    @property
    def hi(self) -> float:
        return float(self._state.hi[0])

    @property
    def mean(self) -> float:
        return float(self._state.sum[0]) / self.n if self.n else float("nan")

    def update(self, x: float) -> tuple[float, float]:
        """Add observation ``x`` ∈ [0, 1]; return the running-intersection bounds."""
        x = float(x)
        if not (0.0 <= x <= 1.0) or math.isnan(x):
            raise StatsError(f"observation {x!r} is outside [0, 1]; rescale bounded values first")
        self._state.update(np.array([x]))
        return self.lo, self.hi

    def extend(self, xs: Iterable[float]) -> tuple[float, float]:
        for x in xs:
            self.update(x)
        return self.lo, self.hi

    def estimate(self) -> Estimate:
        """The current state as an :class:`Estimate` (two-sided ``alpha``)."""
        if self.n == 0:
            raise StatsError("no observations yet")
        m = self.mean
        return Estimate(
            value=m,
            lo=min(self.lo, m),
            hi=max(self.hi, m),
            n=self.n,
            method=METHOD,
            alpha=self.alpha,
            sided=Sided.TWO,
        )


def coverage_paths(
    data: np.ndarray, *, alpha: float, grid: int = 2001, c: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds after every observation for R streams at once: ``(lo, hi)`` of shape (R, N).

    Used by Monte-Carlo calibration; identical arithmetic to :class:`ConfidenceSequence`.
    Streams run in blocks, and each step updates only the grid window that still holds a
    surviving candidate in the block: the same bounds, bit for bit, as updating every
    grid point for all streams at once (tests/harness/stats/test_sequential.py), about
    2–3× faster (benchmarks/sequential_calibration.py).
    """
    x = np.asarray(data, dtype=float)
    if x.ndim != 2 or np.any((x < 0) | (x > 1)):
        raise StatsError("coverage_paths needs an (R, N) array of values in [0, 1]")
    lo = np.empty_like(x)
    hi = np.empty_like(x)
    # streams are independent: blocks of them keep the state in cache and each block's
    # window only as wide as its own surviving candidates
    for start in range(0, x.shape[0], _BLOCK):
        rows = slice(start, start + _BLOCK)
        block = x[rows]
        state = _BettingState(block.shape[0], alpha=alpha, grid=grid, c=c)
        for j in range(block.shape[1]):
            state.update(block[:, j])
            lo[rows, j], hi[rows, j] = state.lo, state.hi
    return lo, hi


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of a sequentially decided threshold gate."""

    verdict: str  # "PASS" | "FAIL" | "INCONCLUSIVE"
    n_used: int
    max_n: int
    estimate: Estimate

    @property
    def fraction_used(self) -> float:
        return self.n_used / self.max_n


def sequential_decide(
    stream: Iterable[float],
    *,
    threshold: float,
    direction: str,
    alpha: float,
    max_n: int,
    min_n: int = 1,
    grid: int = 2001,
) -> SequentialResult:
    """Decide "mean ≥ / ≤ threshold" at one-sided level ``alpha``, stopping as early as possible.

    Runs a :class:`ConfidenceSequence` at two-sided ``2·alpha`` over at most
    ``max_n`` observations and stops at the first n ≥ ``min_n`` where the
    anytime bound settles the gate (PASS: the bound clears the threshold on the
    claimed side; FAIL: the opposite bound is on the wrong side).  Because the
    bounds hold uniformly in n, stopping there keeps the false-PASS rate ≤ α.
    """
    if direction not in ("ge", "le"):
        raise StatsError(f"direction={direction!r} must be 'ge' or 'le'")
    if max_n < 1:
        raise StatsError(f"max_n={max_n} must be ≥ 1")
    if not (0.0 < alpha < 0.5):
        raise StatsError(f"alpha={alpha!r} must be a one-sided level in (0, 0.5)")
    cs = ConfidenceSequence(alpha=2 * alpha, grid=grid)
    verdict = "INCONCLUSIVE"
    for x in stream:
        lo, hi = cs.update(x)
        if cs.n >= min_n:
            if direction == "ge":
                verdict = "PASS" if lo >= threshold else "FAIL" if hi < threshold else verdict
            else:
                verdict = "PASS" if hi <= threshold else "FAIL" if lo > threshold else verdict
            if verdict != "INCONCLUSIVE":
                break
        if cs.n >= max_n:
            break
    if cs.n == 0:
        raise StatsError("sequential_decide got an empty stream")
    return SequentialResult(verdict=verdict, n_used=cs.n, max_n=max_n, estimate=cs.estimate())
