"""Time the sequential calibration's confidence-sequence paths: windowed blocks vs full grid.

Run:  python benchmarks/sequential_calibration.py [--reps 2000] [--looks 1000] [--grid 501]

``harness calibrate --family sequential`` runs the betting confidence sequence over
R streams × N looks for a threshold design and an alternative.  The baseline is the
implementation before the change: one state for all R streams, every grid point
updated at every look (``_BettingState(full_grid=True)``).  ``coverage_paths`` now
runs blocks of streams and updates only the grid window that still holds a
surviving candidate (dead candidates never revive).  Both are timed in this run on
the same data, their bounds are checked to be identical, and the ratio is printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness.stats.sequential import _BettingState, coverage_paths


def full_grid_paths(x: np.ndarray, *, alpha: float, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """The pre-change loop: every stream and every grid point at every look."""
    state = _BettingState(x.shape[0], alpha=alpha, grid=grid, c=0.5, full_grid=True)
    lo, hi = np.empty_like(x), np.empty_like(x)
    for j in range(x.shape[1]):
        state.update(x[:, j])
        lo[:, j], hi[:, j] = state.lo, state.hi
    return lo, hi


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--looks", type=int, default=1000)
    ap.add_argument("--grid", type=int, default=501)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for truth in (0.5, 0.65):  # the family's threshold and alternative designs
        x = (rng.random((args.reps, args.looks)) < truth).astype(float)
        t0 = time.perf_counter()
        base = full_grid_paths(x, alpha=0.1, grid=args.grid)
        t1 = time.perf_counter()
        new = coverage_paths(x, alpha=0.1, grid=args.grid)
        t2 = time.perf_counter()
        same = all(np.array_equal(a, b) for a, b in zip(base, new, strict=True))
        print(
            f"truth {truth}: full grid {t1 - t0:.1f} s, windowed blocks {t2 - t1:.1f} s, "
            f"ratio {(t1 - t0) / (t2 - t1):.2f}x, identical bounds: {same}"
        )


if __name__ == "__main__":
    main()
