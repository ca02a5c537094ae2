"""The typed result every estimator returns.

Convention (documented in docs/statistics.md): ``alpha`` is the *two-sided*
miscoverage of ``[lo, hi]`` when ``sided == TWO``.  Gates decided by the bound
rule at level α request estimates with ``alpha = 2α`` so that ``lo`` is a
one-sided (1−α) lower bound and ``hi`` a one-sided (1−α) upper bound.  For a
one-sided estimate the unused side is the parameter space's natural limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Estimate", "Sided"]


class Sided(StrEnum):
    TWO = "two"
    LOWER = "lower"  # only ``lo`` is a confidence bound
    UPPER = "upper"  # only ``hi`` is a confidence bound


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval and how it was made."""

    value: float
    lo: float
    hi: float
    n: int
    method: str
    alpha: float
    sided: Sided = Sided.TWO
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 < self.alpha < 1.0):
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not any(math.isnan(x) for x in (self.value, self.lo, self.hi)) and not (
            self.lo <= self.hi
        ):
            raise ValueError(f"lo ({self.lo}) must be <= hi ({self.hi})")

    @property
    def confidence(self) -> float:
        """Nominal coverage of the interval (two-sided) or bound (one-sided)."""
        return 1.0 - self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "lo": self.lo,
            "hi": self.hi,
            "n": self.n,
            "method": self.method,
            "alpha": self.alpha,
            "sided": str(self.sided),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        return cls(
            value=float(data["value"]),
            lo=float(data["lo"]),
            hi=float(data["hi"]),
            n=int(data["n"]),
            method=str(data["method"]),
            alpha=float(data["alpha"]),
            sided=Sided(data.get("sided", "two")),
            extra=dict(data.get("extra", {})),
        )
