"""Multiplicity adjustment across the gates of one phase.

Each gate alone is tested at α; with m gates the chance that *some* gate
false-PASSes grows to about mα.  Holm controls that family-wise error rate
uniformly better than Bonferroni; Benjamini–Hochberg controls the false
discovery rate instead.  Both come from statsmodels ``multipletests``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from statsmodels.stats.multitest import multipletests

from harness.errors import StatsError

__all__ = ["adjust"]

_METHODS = {"holm": "holm", "bh": "fdr_bh"}


def adjust(pvalues: Sequence[float], *, method: Literal["holm", "bh", "none"] | str) -> list[float]:
    """Adjusted p-values in input order; compare each with α to decide."""
    ps = [float(p) for p in pvalues]
    for i, p in enumerate(ps):
        if math.isnan(p) or not (0.0 <= p <= 1.0):
            raise StatsError(f"p-value #{i + 1} is {p!r}; p-values must lie in [0, 1]")
    if method == "none" or not ps:
        if method not in ("none", *_METHODS):
            raise StatsError(f"multiplicity method {method!r} must be one of holm, bh, none")
        return ps
    if method not in _METHODS:
        raise StatsError(f"multiplicity method {method!r} must be one of holm, bh, none")
    _, adjusted, _, _ = multipletests(ps, method=_METHODS[method])
    return [float(p) for p in adjusted]
