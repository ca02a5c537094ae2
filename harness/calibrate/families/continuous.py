"""``paired_difference`` on continuous scores, where the pair bootstrap (BCa) is the method.

The design puts the truth exactly on the threshold with skewed scores: a
difference of means 0.05 with exponential noise on log-normal baselines.  (A
paired *ratio* of continuous scores was refused after its BCa bootstrap
false-PASSed 8 % at n = 200 in this design.)
"""

from __future__ import annotations

import numpy as np

from harness.calibrate.core import (
    ALPHA,
    CalibrationRow,
    binary_outcomes,
    calibration_gate,
    register_family,
    row_from_estimates,
)
from harness.metrics import estimate_metric

__all__: list[str] = []


@register_family("continuous_paired")
def _continuous(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    rows = []
    diff = calibration_gate("paired_difference", 0.05)
    for n in (50,) if small else (50, 200):
        ests = []
        for r in range(reps):
            base = rng.lognormal(0.0, 1.0, n)
            cand = base + rng.exponential(1.0, n) - 1.0 + 0.05  # E(cand − base) = 0.05
            ests.append(
                estimate_metric(
                    diff,
                    binary_outcomes(cand),
                    alpha=2 * ALPHA,
                    baseline=binary_outcomes(base),
                    seed=r,
                )
            )
        rows.append(row_from_estimates("paired_difference (continuous)", ests, 0.05))
    return rows
