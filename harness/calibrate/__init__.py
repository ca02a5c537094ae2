"""Monte-Carlo calibration: proof that the statistics keep their promises.

For each gate family we simulate data whose true metric sits *exactly on the
threshold* — the hardest case for a gate — and push it through the code a real
gate uses, with the method a YAML can choose.  Per row:

* **false-PASS rate**: how often the one-sided (1−α) bound cleared the
  threshold anyway; must be ≤ α + 2 Monte-Carlo standard errors (both sides
  where the design is on the threshold for both).
* **coverage** of the two-sided interval: must not fall more than 1 point
  below nominal (beyond 2 MC SE).  Exact methods over-cover by design.

Layout: :mod:`harness.calibrate.core` (types, registry, runner),
:mod:`harness.calibrate.families` (one module per group of families, imported
automatically), :mod:`harness.calibrate.cli` (``harness calibrate``).
"""

from __future__ import annotations

from harness.calibrate.cli import app, render
from harness.calibrate.core import (
    ALPHA,
    FAMILIES,
    MC_SE_LIMIT,
    CalibrationRow,
    CalibrationTable,
    FamilyFn,
    binary_outcomes,
    calibration_gate,
    load_families,
    register_family,
    row_from_bounds,
    row_from_estimates,
    run_calibration,
)

load_families()

__all__ = [
    "ALPHA",
    "FAMILIES",
    "MC_SE_LIMIT",
    "CalibrationRow",
    "CalibrationTable",
    "FamilyFn",
    "app",
    "binary_outcomes",
    "calibration_gate",
    "load_families",
    "register_family",
    "render",
    "row_from_bounds",
    "row_from_estimates",
    "run_calibration",
]
