"""Quantiles (e.g. p95 latency) with exact distribution-free intervals and IQR outlier flags.

The interval comes from order statistics via ``scipy.stats.quantile_test(...)
.confidence_interval``: valid for any continuous distribution, no normality
assumed.  With few items a high quantile cannot be bounded from above at all
(e.g. p95 with n < 59 at 95 %): scipy returns NaN there and we report that side
as the natural limit (±∞), flagged in ``extra["unbounded_side"]``, so a
"p95 ≤ t" gate stays INCONCLUSIVE rather than passing on too little data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = ["iqr_outliers", "quantile_estimate"]


def iqr_outliers(values: np.ndarray, *, k: float = 1.5) -> list[int]:
    """Indices of values outside [Q1 − k·IQR, Q3 + k·IQR] (Tukey's fences)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return []
    q1, q3 = np.quantile(x, [0.25, 0.75])
    iqr = q3 - q1
    mask = (x < q1 - k * iqr) | (x > q3 + k * iqr)
    return [int(i) for i in np.nonzero(mask)[0]]


def quantile_estimate(values: np.ndarray, *, q: float, alpha: float) -> Estimate:
    """Sample ``q``-quantile with the exact order-statistic two-sided ``1−alpha`` interval."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) < 1:
        raise StatsError("a quantile needs at least one value")
    if not np.all(np.isfinite(x)):
        raise StatsError("quantile values must be finite")
    if not (0.0 < q < 1.0):
        raise StatsError(f"q={q!r} must lie in (0, 1), e.g. 0.95 for p95")
    point = float(np.quantile(x, q))
    res = stats.quantile_test(x, q=point, p=q)
    ci = res.confidence_interval(confidence_level=1.0 - alpha)
    lo, hi = float(ci.low), float(ci.high)
    unbounded = []
    if math.isnan(lo):
        lo = -math.inf
        unbounded.append("lower")
    if math.isnan(hi):
        hi = math.inf
        unbounded.append("upper")
    outliers = iqr_outliers(x)
    extra: dict[str, object] = {
        "q": q,
        "outliers": len(outliers),
        "outlier_indices": outliers,
        "unbounded_side": ",".join(unbounded) or None,
    }
    if unbounded:
        extra["note"] = (
            f"n={len(x)} is too small for a {1 - alpha / 2:.1%} one-sided order-statistic bound "
            f"on the {','.join(unbounded)} side of the {q:g}-quantile; that side is ±inf"
        )
    return Estimate(
        value=point,
        lo=min(lo, point),
        hi=max(hi, point),
        n=len(x),
        method="exact order-statistic interval (quantile_test)",
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )
