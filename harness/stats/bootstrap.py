"""Seeded bootstrap confidence intervals over independent units (tasks, item pairs).

A thin layer over :func:`scipy.stats.bootstrap` that (1) is deterministic given
a seed, (2) names the method for reports ("task bootstrap (BCa, 2000
resamples)"), and (3) handles the degenerate cases scipy warns about: when
every unit has the same value the bootstrap distribution is a point and its
"interval" would claim certainty, so we fall back to an exact, conservative
bound for a mean bounded in [lower, upper] (see :func:`degenerate_bounds`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from harness.errors import StatsError
from harness.stats.proportion import proportion_estimate

__all__ = [
    "BOOTSTRAP_METHODS",
    "DEFAULT_RESAMPLES",
    "BootstrapCI",
    "bootstrap_ci",
    "degenerate_bounds",
]

DEFAULT_RESAMPLES = 2000

#: gate-spec method name → scipy method name
BOOTSTRAP_METHODS: dict[str, str] = {
    "bca": "BCa",
    "bootstrap": "BCa",
    "percentile": "percentile",
    "basic": "basic",
}


@dataclass(frozen=True)
class BootstrapCI:
    lo: float
    hi: float
    label: str
    distribution: np.ndarray


def degenerate_bounds(
    value: float, m: int, *, alpha: float, lower: float, upper: float
) -> tuple[float, float]:
    """Exact conservative interval for a mean in [lower, upper] when all m units equal ``value``.

    With X ∈ [lower, upper]: E X ≥ lower + (value − lower)·P(X ≥ value) and
    E X ≤ value + (upper − value)·P(X > value).  Bounding P(X ≥ value) below by
    the Clopper–Pearson bound for m/m and P(X > value) above by the bound for
    0/m (each at α/2) gives a valid two-sided 1−α interval.
    """
    cp_all = proportion_estimate(m, m, alpha=alpha)
    cp_none = proportion_estimate(0, m, alpha=alpha)
    lo = lower + (value - lower) * cp_all.lo
    hi = value + (upper - value) * cp_none.hi
    return lo, hi


def bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    alpha: float,
    seed: int,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    paired: bool = False,
    unit: str = "task",
) -> BootstrapCI:
    """Two-sided ``1−alpha`` bootstrap interval of ``statistic`` (vectorized, ``axis`` kw).

    Resamples the rows of ``data`` (with ``paired=True`` the arrays are
    resampled together).  BCa is the default; if scipy cannot compute BCa (it
    warns and returns NaN, e.g. when the jackknife is constant) we retry with
    the percentile method and say so in the label.
    """
    key = (method or "bca").lower()
    if key not in BOOTSTRAP_METHODS:
        raise StatsError(
            f"unknown bootstrap CI method {method!r}; use one of: "
            + ", ".join(sorted(BOOTSTRAP_METHODS))
        )
    if n_resamples < 100:
        raise StatsError(f"n_resamples={n_resamples} is too few for a CI; use ≥ 1000")
    m = len(data[0])
    if m < 2:
        raise StatsError(f"a {unit} bootstrap needs ≥ 2 {unit}s, got {m}; evaluate more {unit}s")
    scipy_method = BOOTSTRAP_METHODS[key]

    def run(name: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return stats.bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                confidence_level=1.0 - alpha,
                method=name,
                paired=paired,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )

    res = run(scipy_method)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    label = f"{unit} bootstrap ({scipy_method}, {n_resamples} resamples)"
    if (np.isnan(lo) or np.isnan(hi)) and scipy_method != "percentile":
        res = run("percentile")
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        label = (
            f"{unit} bootstrap (percentile — {scipy_method} undefined here, "
            f"{n_resamples} resamples)"
        )
    return BootstrapCI(
        lo=lo, hi=hi, label=label, distribution=np.asarray(res.bootstrap_distribution)
    )
