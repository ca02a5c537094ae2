"""Monte-Carlo family ``judged_proportion`` for ``harness calibrate`` (issue 16).

Simulates a subject whose *true* event rate sits exactly on the threshold, a
judge of known sensitivity/specificity that labels its answers, and a held-out
human-labelled set on which the judge is measured.  Each replicate goes through
the real gate path (``estimate_metric`` on a ``judged_proportion`` gate, the
labelled set as the second sample) and, beside it, the naive gate that treats
the judge's labels as truth (a plain Clopper–Pearson ``proportion`` gate on the
same flags).  The corrected gate's false-PASS must stay ≤ α; the naive one's is
reported next to it — far above α when the judge misses events ("≤" gates) or
raises false alarms ("≥" gates).  ``pass_rate_at_quarter`` shows what the
robustness costs: how often each gate PASSes a "≤" claim when the true rate is
a quarter of the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.calibrate.core import ALPHA, CalibrationRow, register_family
from harness.metrics import estimate_metric
from harness.outcomes import Outcome
from harness.spec import GateSpec
from harness.stats.estimate import Estimate

__all__ = ["JudgeScenario", "judged_rows", "scenarios"]


@dataclass(frozen=True)
class JudgeScenario:
    """A judge of known quality, a true rate on the threshold, and the sample sizes."""

    name: str
    threshold: float
    sensitivity: float
    specificity: float
    n: int
    positives: int  # labelled events in the judge's calibration set
    negatives: int  # labelled non-events


def scenarios(small: bool) -> list[JudgeScenario]:
    """Three judges: one that misses events, one that raises false alarms, and the
    trained safety judge's measured quality (Se 0.88 / Sp 0.75 on 191 / 204 rows)."""
    n, lab = (600, 100) if small else (2000, 200)
    return [
        JudgeScenario("misses events", 0.05, 0.70, 1.0, n, lab, lab),
        JudgeScenario("false alarms", 0.05, 0.99, 0.90, n, lab, lab),
        JudgeScenario("safety judge", 0.10, 0.88, 0.75, 300, 191, 204),
    ]


def _gate(metric: str, threshold: float, method: str) -> GateSpec:
    return GateSpec(
        id=f"calibrate_{metric}",
        metric=metric,
        direction="le",
        tiers={"primary": threshold},
        method=method,
    )


def _flags(rng: np.random.Generator, s: JudgeScenario, truth: float) -> np.ndarray:
    events = rng.random(s.n) < truth
    u = rng.random(s.n)
    return np.where(events, u < s.sensitivity, u >= s.specificity)


def _calibration(rng: np.random.Generator, s: JudgeScenario) -> list[Outcome]:
    hits = rng.random(s.positives) < s.sensitivity
    alarms = rng.random(s.negatives) >= s.specificity
    return [Outcome(f"pos{i}", float(h), raw={"label": 1}) for i, h in enumerate(hits)] + [
        Outcome(f"neg{i}", float(a), raw={"label": 0}) for i, a in enumerate(alarms)
    ]


def _outcomes(flags: np.ndarray) -> list[Outcome]:
    return [Outcome(f"i{i}", float(f)) for i, f in enumerate(flags)]


def _one(
    rng: np.random.Generator, s: JudgeScenario, truth: float, judged: GateSpec, naive: GateSpec
) -> tuple[Estimate, Estimate]:
    flags = _outcomes(_flags(rng, s, truth))
    corrected = estimate_metric(judged, flags, alpha=2 * ALPHA, baseline=_calibration(rng, s))
    return corrected, estimate_metric(naive, flags, alpha=2 * ALPHA)


def _scenario_row(reps: int, rng: np.random.Generator, s: JudgeScenario) -> CalibrationRow:
    t = s.threshold
    judged = _gate("judged_proportion", t, "rogan-gladen")
    naive = _gate("proportion", t, "beta")
    at_t = [_one(rng, s, t, judged, naive) for _ in range(reps)]
    low = [_one(rng, s, t / 4, judged, naive) for _ in range(reps)]
    lo = np.array([c.lo for c, _ in at_t])
    hi = np.array([c.hi for c, _ in at_t])
    n_lo = np.array([nv.lo for _, nv in at_t])
    n_hi = np.array([nv.hi for _, nv in at_t])
    return CalibrationRow(
        family=f"judged_proportion ({s.name})",
        method=at_t[0][0].method,
        n=s.n,
        reps=reps,
        truth=t,
        alpha=ALPHA,
        false_pass_ge=float(np.mean(lo >= t)),
        false_pass_le=float(np.mean(hi <= t)),
        coverage=float(np.mean((lo <= t) & (t <= hi))),
        nominal=1 - 2 * ALPHA,
        extra={
            "sens": s.sensitivity,
            "spec": s.specificity,
            "labelled": f"{s.positives}+{s.negatives}",
            "naive_false_pass_ge": float(np.mean(n_lo >= t)),
            "naive_false_pass_le": float(np.mean(n_hi <= t)),
            "pass_rate_at_quarter": float(np.mean([c.hi <= t for c, _ in low])),
            "naive_pass_rate_at_quarter": float(np.mean([nv.hi <= t for _, nv in low])),
        },
    )


@register_family("judged_proportion")
def judged_rows(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    """One calibration row per judge scenario (see module docs)."""
    return [_scenario_row(reps, rng, s) for s in scenarios(small)]
