"""Worst-seed decision over several trained runs (:mod:`harness.stats.seeds`).

The worst run sits exactly on the threshold and the others above it by the
run-to-run spread measured on the circuit-breaker phase (and, as the tightest
case, all runs on the threshold); the runs share their items (latent item
difficulty correlated 0.5 between runs).  ``ge`` is the false-PASS (the worst
run's own α bound cleared the threshold), ``le`` the false-FAIL side (the
Bonferroni α/k upper bound fell to the threshold).

``worst_seed_paired`` is the code-edit ``srl_vs_sft_success`` path: 3 runs, each a
paired Newcombe difference against one shared baseline run on the phase's 106
held-out items, the worst run's true difference exactly 0 (the threshold); the
baseline rate near the Stage 1 model's (0.02, sparse tables) and at 0.25.
"""

from __future__ import annotations

import numpy as np

from harness.calibrate.core import ALPHA, CalibrationRow, register_family, row_from_bounds
from harness.stats.seeds import (
    MEASURED_SPREAD,
    simulate_worst_run_bounds,
    simulate_worst_run_paired_bounds,
)

__all__: list[str] = []


@register_family("worst_seed")
def _worst_seed(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n, threshold = (200, 0.70) if small else (400, 0.70)
    rows = []
    for label, spread in (("measured spread", MEASURED_SPREAD), ("all on threshold", (0.0,) * 3)):
        lo, hi, rates = simulate_worst_run_bounds(
            threshold=threshold,
            spread=spread,
            n=n,
            reps=reps,
            alpha=ALPHA,
            item_correlation=0.5,
            rng=rng,
        )
        rows.append(
            row_from_bounds(
                "worst_seed",
                "worst of 3 runs: Clopper–Pearson at α (PASS side) / α/3 (FAIL side)",
                n=n,
                lo=lo,
                hi=hi,
                truth=threshold,
                extra={"design": label, "rates": [round(r, 4) for r in rates]},
            )
        )
    return rows


@register_family("worst_seed_paired")
def _worst_seed_paired(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    n = 106  # the code-edit held-out action rows when this family was added (now 103)
    designs = [(0.02, (0.0, 0.1, 0.2)), (0.25, (0.0, 0.0, 0.0))]
    if not small:
        designs += [(0.02, (0.0, 0.0, 0.0)), (0.25, (0.0, 0.1, 0.2))]
    rows = []
    for base_rate, spread in designs:
        lo, hi, rates = simulate_worst_run_paired_bounds(
            base_rate=base_rate,
            spread=spread,
            n=n,
            reps=reps,
            alpha=ALPHA,
            item_correlation=0.5,
            rng=rng,
        )
        rows.append(
            row_from_bounds(
                "worst_seed_paired",
                "worst of 3 paired runs vs one baseline: Newcombe at α (PASS) / α/3 (FAIL)",
                n=n,
                lo=lo,
                hi=hi,
                truth=0.0,
                extra={
                    "baseline_rate": base_rate,
                    "rates": [round(r, 4) for r in rates],
                },
            )
        )
    return rows
