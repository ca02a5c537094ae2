"""Proportion gates: exact false-PASS over every possible count, swept over n.

For a binomial proportion no Monte-Carlo is needed: the false-PASS rate at a
true rate t is Σₖ P(K = k | n, t) · 1[the gate's bound at k clears t], summed
exactly.  Rows sweep n for the method a YAML can choose (Clopper–Pearson,
``beta``) at the thresholds the gates use, including the designs where the
approximate intervals failed; the Wilson and Jeffreys rates at the same
design are reported in the notes to document why a YAML may no longer pick
them (``harness.spec.METRIC_METHODS``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from harness.calibrate.core import ALPHA, CalibrationRow, register_family
from harness.stats.proportion import proportion_estimate

__all__: list[str] = []

#: (threshold, gate direction, sample sizes) — slip ≤ 0.1 %, pass@1 / best-of-n ≥ 0.6, …
_DESIGNS: tuple[tuple[float, str, tuple[int, ...]], ...] = (
    (0.001, "le", (500, 1920, 2703, 2995, 5000)),
    (0.6, "ge", (12, 20, 50, 164, 400)),
    (0.7, "ge", (100, 400)),
    (0.2, "le", (100, 400)),
    (0.9, "ge", (50, 200)),
)
_SMALL: tuple[tuple[float, str, tuple[int, ...]], ...] = (
    (0.001, "le", (2703,)),
    (0.6, "ge", (12,)),
)


def _exact_false_pass(n: int, t: float, direction: str, method: str) -> tuple[float, float]:
    """(exact false-PASS on the gate's side, exact two-sided coverage) at true rate t."""
    k = np.arange(n + 1)
    pmf = stats.binom.pmf(k, n, t)
    bounds = [proportion_estimate(int(j), n, alpha=2 * ALPHA, method=method) for j in k]
    lo = np.array([b.lo for b in bounds])
    hi = np.array([b.hi for b in bounds])
    passed = lo >= t if direction == "ge" else hi <= t
    covered = (lo <= t) & (t <= hi)
    return float(pmf[passed].sum()), float(pmf[covered].sum())


@register_family("proportion")
def _proportion(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    del reps, rng  # exact sums
    rows = []
    for t, direction, ns in _SMALL if small else _DESIGNS:
        for n in ns:
            fp, cover = _exact_false_pass(n, t, direction, "beta")
            notes: dict[str, object] = {"gate": f"{'≥' if direction == 'ge' else '≤'} {t:g}"}
            for refused in ("wilson", "jeffreys"):
                notes[f"{refused} (refused)"] = round(
                    _exact_false_pass(n, t, direction, refused)[0], 4
                )
            nan = float("nan")
            rows.append(
                CalibrationRow(
                    family="proportion",
                    method="Clopper–Pearson exact",
                    n=n,
                    reps=0,
                    truth=t,
                    alpha=ALPHA,
                    false_pass_ge=fp if direction == "ge" else nan,
                    false_pass_le=fp if direction == "le" else nan,
                    coverage=cover,
                    nominal=1 - 2 * ALPHA,
                    extra=notes,
                    exact=True,
                )
            )
    return rows
