"""Estimators, confidence intervals and tests behind every gate decision."""

from harness.stats.estimate import Estimate, Sided

__all__ = ["Estimate", "Sided"]
