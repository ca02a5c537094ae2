"""Score interval for the ratio of two proportions measured on the same items (matched pairs).

"Capability retention ≥ 0.9" and "ASR reduced by ≥ 50 %" compare a candidate
and a baseline on the same prompts: a paired 2×2 table with cells
``a`` (both succeed), ``b`` (candidate only), ``c`` (baseline only), ``d``
(neither), and the claim is about θ = p_cand / p_base = (a+b)/(a+c) in the
population.  The pair bootstrap (BCa) false-PASSed 5.5 % at n = 200 and an
exact sum gave 5.4 % at n = 400 for a 5 % gate, so this module uses the
asymptotic **score** interval for a ratio of matched-pair proportions
(Nam & Blackwelder 2002; Tang, Tang & Chan 2003): for each candidate θ,

    T(θ) = (a + b − θ(a + c)) / √(n(1+θ)p̃₂₁ + (a+b+c)(θ−1)),

with p̃₂₁ the closed-form restricted maximum-likelihood estimate of the
"baseline only" cell under H0: p_cand = θ·p_base.  The interval is
{θ : −z ≤ T(θ) ≤ z}, found by bisection on log θ (T decreases in θ).

Two changes make it keep a one-sided false-PASS ≤ α at n = 200–400 across
baseline rates 0.3–0.95 and correlation structures (``harness calibrate``,
family ``paired_ratio``):

* a **continuity correction** of ½ on the count scale (|numerator| − ½), as
  in McNemar's corrected statistic: the plain score test sits *at* α on
  average and above it by ~0.3 points in some designs;
* **degenerate tables** — the candidate has no successes (a + b = 0) or there
  are no discordant pairs (b + c = 0) — make the restricted variance vanish
  and the score interval collapse toward a point (the pair bootstrap gave a
  zero-width ``[1, 1]`` reduction after 0/400 attacks).  There the interval is
  widened to include a finite-sample bound built from exact Clopper–Pearson
  bounds at α/4 per part (Bonferroni): [0, U_cand/L_base] when the candidate
  has no success, [1 − U_c/L_base, 1 + U_b/L_base] when no pair is discordant.

Hand-written (neither scipy nor statsmodels has a paired ratio interval), so
it is Monte-Carlo-checked.  Everything is vectorized over tables so the
calibration runs the exact arithmetic the gates use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from harness.errors import StatsError

__all__ = ["CONTINUITY", "METHOD", "paired_ratio_score_bounds", "tang_score_statistic"]

METHOD = "Tang score interval for a paired ratio (continuity-corrected)"
CONTINUITY = 0.5
_LOG_MIN, _LOG_MAX = math.log(1e-9), math.log(1e9)
_STEPS = 64


def tang_score_statistic(
    theta: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    n: np.ndarray,
    *,
    continuity: float = CONTINUITY,
) -> np.ndarray:
    """Score statistic T(θ) for H0 p_cand/p_base = θ (positive: the data say the ratio is larger).

    Arrays broadcast.  Where the restricted variance is 0 the statistic is
    ±∞ with the sign of the (corrected) numerator, 0 when that is 0.
    """
    aa = a.astype(float)
    ab, ac = aa + b, aa + c
    big_a = n * (1.0 + theta)
    big_b = ac * theta**2 - (ab + 2.0 * c)
    big_c = c * (1.0 - theta) * (ab + c) / n
    disc = np.maximum(big_b * big_b - 4.0 * big_a * big_c, 0.0)
    p21 = (-big_b + np.sqrt(disc)) / (2.0 * big_a)
    var = n * (1.0 + theta) * p21 + (ab + c) * (theta - 1.0)
    num = ab - theta * ac
    num = np.sign(num) * np.maximum(np.abs(num) - continuity, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / np.sqrt(np.maximum(var, 0.0))
    edge = np.where(num == 0, 0.0, np.copysign(np.inf, num))
    return np.asarray(np.where(var > 1e-12, t, edge))


def _solve(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, n: np.ndarray, target: float, continuity: float
) -> np.ndarray:
    """θ where T(θ) crosses ``target`` (T decreasing in θ), by bisection on log θ."""
    lo = np.full(a.shape, _LOG_MIN)
    hi = np.full(a.shape, _LOG_MAX)
    for _ in range(_STEPS):
        mid = 0.5 * (lo + hi)
        above = tang_score_statistic(np.exp(mid), a, b, c, n, continuity=continuity) > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.asarray(np.exp(0.5 * (lo + hi)))


def _cp(k: np.ndarray, n: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson lower and upper bounds, each at one-sided level ``q``."""
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(q, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - q, k + 1, n - k), 1.0)
    return lo, hi


def _exact_bounds(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, n: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-sample bounds for the two degenerate table shapes (Bonferroni, α/4 per part).

    No candidate success: θ = p_cand/p_base ∈ [0, U_cand/L_base].  No discordant
    pair: θ = 1 + (p_b − p_c)/p_base ∈ [1 − U_c/L_base, 1 + U_b/L_base].
    """
    q = alpha / 4.0
    l_base, _ = _cp(a + c, n, q)
    _, u_cand = _cp(a + b, n, q)
    _, u_b = _cp(b, n, q)
    _, u_c = _cp(c, n, q)
    with np.errstate(divide="ignore"):
        inv = np.where(l_base > 0, 1.0 / l_base, np.inf)
    zero_cand = a + b == 0
    lo = np.where(zero_cand, 0.0, np.maximum(1.0 - u_c * inv, 0.0))
    hi = np.where(zero_cand, u_cand * inv, 1.0 + u_b * inv)
    return lo, hi


def paired_ratio_score_bounds(
    a: np.ndarray | int,
    b: np.ndarray | int,
    c: np.ndarray | int,
    d: np.ndarray | int,
    *,
    alpha: float,
    continuity: float = CONTINUITY,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``1−alpha`` bounds on p_cand/p_base for arrays of paired 2×2 tables.

    ``a``: both succeed, ``b``: candidate only, ``c``: baseline only,
    ``d``: neither.  Each bound is a one-sided ``1 − alpha/2`` bound.  Tables
    whose baseline has no success have no ratio: StatsError.
    """
    if not (0.0 < alpha < 1.0):
        raise StatsError(f"alpha={alpha!r} must lie in (0, 1)")
    a, b, c, d = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (a, b, c, d))
    if np.any((a < 0) | (b < 0) | (c < 0) | (d < 0)):
        raise StatsError("paired table cells must be non-negative counts")
    if np.any(a + c == 0):
        raise StatsError(
            "ratio undefined: the baseline has no success on these items; gate on the "
            "candidate's rate instead"
        )
    n = (a + b + c + d).astype(float)
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    lo = np.where(a + b == 0, 0.0, _solve(a, b, c, n, z, continuity))
    hi = _solve(a, b, c, n, -z, continuity)
    degenerate = (a + b == 0) | (b + c == 0)
    if np.any(degenerate):
        ex_lo, ex_hi = _exact_bounds(a, b, c, n, alpha)
        lo = np.where(degenerate, np.minimum(lo, ex_lo), lo)
        hi = np.where(degenerate, np.maximum(hi, ex_hi), hi)
    return lo, hi
