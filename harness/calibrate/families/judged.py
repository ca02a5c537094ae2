"""Monte-Carlo family ``judged_proportion`` for ``harness calibrate`` (issue 16).

Simulates a subject whose *true* event rate sits exactly on the threshold, a
judge of known sensitivity/specificity that labels its answers, and a held-out
human-labelled set on which the judge is measured.  The gate's bounds depend on
the data only through three counts (flagged items, the judge's true positives
and true negatives on the labelled set), so replicates draw those counts and
call the gate's own functions (``judged_rate_estimate``, and for the naive gate
that treats the judge's labels as truth, the Clopper–Pearson
``proportion_estimate`` on the same flags) once per distinct count tuple — which
makes 20,000 replicates cheap.  ``GATE_PATH_CHECKS`` replicates per scenario
also run through the full gate path (``estimate_metric`` on outcome lists, the
labelled set as the second sample) and must give identical bounds.  The
corrected gate's false-PASS must stay ≤ α; the naive one's is reported next to
it — far above α when the judge misses events ("≤" gates) or raises false alarms
("≥" gates).  ``pass_rate_at_quarter`` shows what the robustness costs: how
often each gate PASSes a "≤" claim when the true rate is a quarter of the
threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.calibrate.core import ALPHA, CalibrationRow, register_family
from harness.errors import StatsError
from harness.metrics import estimate_metric
from harness.outcomes import Outcome
from harness.spec import GateSpec
from harness.stats.estimate import Estimate
from harness.stats.judged import JUDGED_METHODS, JudgeCounts, judged_rate_estimate
from harness.stats.proportion import proportion_estimate

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


#: replicates per scenario also run through the full gate path (outcome lists), to show the
#: count-level computation below gives the gate's bounds exactly
GATE_PATH_CHECKS = 25


def _counts(
    rng: np.random.Generator, s: JudgeScenario, truth: float, reps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged items, judge true positives, judge true negatives) per replicate.

    Each item is flagged with probability ``truth·Se + (1 − truth)·(1 − Sp)``
    independently, so the flagged count is binomial — the same law as drawing
    the items' true events and the judge's errors one by one.
    """
    q = truth * s.sensitivity + (1 - truth) * (1 - s.specificity)
    events = rng.binomial(s.n, q, reps)
    tp = rng.binomial(s.positives, s.sensitivity, reps)
    tn = rng.binomial(s.negatives, s.specificity, reps)
    return events, tp, tn


def _bounds(
    s: JudgeScenario, events: np.ndarray, tp: np.ndarray, tn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(corrected lo, hi, naive lo, hi): the gate's functions, once per distinct count tuple."""
    corrected: dict[tuple[int, int, int], tuple[float, float]] = {}
    naive: dict[int, tuple[float, float]] = {}
    out = np.empty((4, len(events)))
    for i, key in enumerate(zip(events.tolist(), tp.tolist(), tn.tolist(), strict=True)):
        if key not in corrected:
            counts = JudgeCounts(key[1], s.positives, key[2], s.negatives)
            e = judged_rate_estimate(key[0], s.n, counts, alpha=2 * ALPHA)
            corrected[key] = (e.lo, e.hi)
        if key[0] not in naive:
            p = proportion_estimate(key[0], s.n, alpha=2 * ALPHA, method="beta")
            naive[key[0]] = (p.lo, p.hi)
        out[:, i] = (*corrected[key], *naive[key[0]])
    return out[0], out[1], out[2], out[3]


def _gate_path_check(rng: np.random.Generator, s: JudgeScenario, judged: GateSpec) -> None:
    """A few replicates through ``estimate_metric``: the count-level bounds must match."""
    naive = _gate("proportion", s.threshold, "beta")
    for _ in range(GATE_PATH_CHECKS):
        flags = _flags(rng, s, s.threshold)
        calib = _calibration(rng, s)
        events = np.array([int(flags.sum())])
        tp = np.array([sum(int(o.value) for o in calib if o.raw["label"] == 1)])
        tn = np.array([sum(1 - int(o.value) for o in calib if o.raw["label"] == 0)])
        lo, hi, n_lo, n_hi = _bounds(s, events, tp, tn)
        gate_est, naive_est = _one_from(flags, calib, judged, naive)
        if (gate_est.lo, gate_est.hi, naive_est.lo, naive_est.hi) != (
            lo[0],
            hi[0],
            n_lo[0],
            n_hi[0],
        ):
            raise StatsError(
                f"judged_proportion calibration: count-level bounds ({lo[0]}, {hi[0]}) differ "
                f"from the gate path ({gate_est.lo}, {gate_est.hi}); the family no longer "
                "calibrates what gates run"
            )


def _one_from(
    flags: np.ndarray, calib: list[Outcome], judged: GateSpec, naive: GateSpec
) -> tuple[Estimate, Estimate]:
    outs = _outcomes(flags)
    corrected = estimate_metric(judged, outs, alpha=2 * ALPHA, baseline=calib)
    return corrected, estimate_metric(naive, outs, alpha=2 * ALPHA)


def _scenario_row(reps: int, rng: np.random.Generator, s: JudgeScenario) -> CalibrationRow:
    t = s.threshold
    judged = _gate("judged_proportion", t, "rogan-gladen")
    _gate_path_check(rng, s, judged)
    lo, hi, n_lo, n_hi = _bounds(s, *_counts(rng, s, t, reps))
    _, q_hi, _, nq_hi = _bounds(s, *_counts(rng, s, t / 4, reps))
    return CalibrationRow(
        family=f"judged_proportion ({s.name})",
        method=JUDGED_METHODS["rogan-gladen"],
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
            "pass_rate_at_quarter": float(np.mean(q_hi <= t)),
            "naive_pass_rate_at_quarter": float(np.mean(nq_hi <= t)),
        },
    )


@register_family("judged_proportion")
def judged_rows(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    """One calibration row per judge scenario (see module docs)."""
    return [_scenario_row(reps, rng, s) for s in scenarios(small)]
