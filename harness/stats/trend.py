"""Trend of a metric over an ordered series (e.g. per training step).

Default: Theil–Sen slope with its interval (``scipy.stats.theilslopes``),
robust to the occasional spike in a training curve; ``method="ols"`` gives the
OLS slope and t interval from statsmodels.  ``extra`` carries a Mann–Kendall
trend test p-value (Kendall's τ between position and value, scipy
``kendalltau``) so "is it really going down" has an answer independent of the
slope model.
"""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from scipy import stats

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided

__all__ = ["trend_estimate"]


def trend_estimate(values: np.ndarray, *, alpha: float, method: str | None = None) -> Estimate:
    """Slope per step of ``values`` (in order) with a two-sided ``1−alpha`` interval."""
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) < 3:
        raise StatsError(f"a trend needs at least 3 ordered values, got {y.size}")
    if not np.all(np.isfinite(y)):
        raise StatsError("trend values must be finite")
    x = np.arange(len(y), dtype=float)
    key = (method or "theil-sen").lower()
    tau = stats.kendalltau(x, y)
    extra: dict[str, object] = {
        "kendall_tau": float(tau.statistic) if np.isfinite(tau.statistic) else 0.0,
        "mann_kendall_p_two_sided": float(tau.pvalue) if np.isfinite(tau.pvalue) else 1.0,
    }
    if key in ("theil-sen", "theilsen", "theil_sen"):
        res = stats.theilslopes(y, x, alpha=1 - alpha)
        slope, lo, hi = float(res.slope), float(res.low_slope), float(res.high_slope)
        label = "Theil–Sen slope"
    elif key == "ols":
        fit = sm.OLS(y, sm.add_constant(x)).fit()
        slope = float(fit.params[1])
        lo, hi = (float(v) for v in fit.conf_int(alpha=alpha)[1])
        label = "OLS slope (t interval)"
    else:
        raise StatsError(f"unknown trend method {method!r}; use 'theil-sen' or 'ols'")
    return Estimate(
        value=slope,
        lo=min(lo, slope),
        hi=max(hi, slope),
        n=len(y),
        method=label,
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )
