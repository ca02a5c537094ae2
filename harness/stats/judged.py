"""A rate scored by an imperfect judge: Rogan–Gladen correction with judge-robust exact bounds.

When a judge (a classifier, an LLM, a phrase list) decides which items are
"events" (a harmful answer slipped, a benign prompt was refused), the observed
event share ``q`` is not the true rate ``p``.  With the judge's sensitivity
``Se`` (share of true events it flags) and specificity ``Sp`` (share of
non-events it clears), measured on a *held-out* human-labelled set,

    q = p·Se + (1 − p)·(1 − Sp),   so   p = (q + Sp − 1) / (Se + Sp − 1)

(Rogan & Gladen 1978).  That is the point estimate reported here.

**Bounds.**  Each one-sided bound uses the item sample and *one* judge
parameter, the one whose error would flatter the claim, and takes the other at
its least favourable value:

* upper bound ``p ≤ q_hi / Se_lo`` — true for *any* specificity, because
  ``q ≥ p·Se``.  A judge that misses events can only make the observed rate too
  low, and this bound undoes that;
* lower bound ``p ≥ (q_lo − f_hi) / (1 − f_hi)`` with ``f = 1 − Sp`` — true for
  *any* sensitivity, because ``q ≤ p + (1 − p)·f``.

``q_hi``/``q_lo``, ``Se_lo`` and ``f_hi`` are exact one-sided Clopper–Pearson
bounds, each at half the side's error (Bonferroni), so each corrected bound
holds with probability ≥ 1 − α whatever the true rate, judge and sample sizes —
a finite-sample guarantee, not an asymptotic one.  It assumes only that the
judge's miss rate (for the upper bound) or false-alarm rate (for the lower
bound) on the evaluated answers is the one measured on the labelled set.

Why not the two-parameter Rogan–Gladen interval (delta method, or the image of
a Clopper–Pearson box)?  On the pass side it *credits* the judge's false
positives, which needs the labelled set's specificity to transfer to the
subject's answers.  It does not: the safety judge flags ~25 % of the labelled
harmless answers but none of a refuse-everything subject's refusals, and the
credited false-positive rate would drive that subject's upper bound to 0 — a
PASS on a ≤ 0.1 % claim from 2,146 prompts, which no sample of that size can
support.  The bounds here never rely on the parameter that is not needed.

Everything is computed from counts, so the module is pure and cheap; the
Monte-Carlo check lives in ``harness calibrate`` (family ``judged_proportion``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from statsmodels.stats.proportion import proportion_confint

from harness.errors import StatsError
from harness.stats.estimate import Estimate, Sided
from harness.stats.power import n_for_proportion

__all__ = [
    "JUDGED_METHODS",
    "JudgeCounts",
    "judged_advice",
    "judged_n_needed",
    "judged_rate_estimate",
    "labelled_needed",
    "rogan_gladen",
]

#: Method names a gate spec may use → the label recorded in evidence ``method``.
JUDGED_METHODS: dict[str, str] = {
    "rogan-gladen": "Rogan–Gladen, judge-robust Clopper–Pearson bounds (Bonferroni α/2)",
}

_CP = "Clopper–Pearson exact"


@dataclass(frozen=True)
class JudgeCounts:
    """The judge against human labels on a held-out set.

    ``true_pos`` of ``positives`` labelled events were flagged by the judge;
    ``true_neg`` of ``negatives`` labelled non-events were cleared.
    """

    true_pos: int
    positives: int
    true_neg: int
    negatives: int

    def __post_init__(self) -> None:
        for name, k, n in (
            ("true_pos", self.true_pos, self.positives),
            ("true_neg", self.true_neg, self.negatives),
        ):
            if n < 1:
                kind = "events" if name == "true_pos" else "non-events"
                raise StatsError(
                    f"the judge's labelled set has no {kind} (n=0); sensitivity and "
                    "specificity both need labelled rows"
                )
            if not 0 <= k <= n:
                raise StatsError(f"{name}={k} must lie in [0, {n}]")

    @property
    def sensitivity(self) -> float:
        return self.true_pos / self.positives

    @property
    def specificity(self) -> float:
        return self.true_neg / self.negatives


def _cp(k: int, n: int, alpha_two_sided: float) -> tuple[float, float]:
    lo, hi = proportion_confint(k, n, alpha=alpha_two_sided, method="beta")
    return max(0.0, min(float(lo), k / n)), min(1.0, max(float(hi), k / n))


def rogan_gladen(q: float, sensitivity: float, specificity: float) -> float:
    """Rogan–Gladen point estimate clipped to [0, 1]; NaN when Se + Sp ≤ 1 (judge no better
    than a coin, so the observed rate carries no information about the true one)."""
    youden = sensitivity + specificity - 1.0
    if youden <= 0.0:
        return math.nan
    return min(1.0, max(0.0, (q + specificity - 1.0) / youden))


def _upper(q_hi: float, se_lo: float) -> float:
    return 1.0 if se_lo <= q_hi or se_lo <= 0.0 else q_hi / se_lo


def _lower(q_lo: float, fpr_hi: float) -> float:
    return 0.0 if fpr_hi >= 1.0 or q_lo <= fpr_hi else (q_lo - fpr_hi) / (1.0 - fpr_hi)


def judged_rate_estimate(
    events: int, n: int, judge: JudgeCounts, *, alpha: float, method: str | None = None
) -> Estimate:
    """True-rate estimate from ``events`` judge-flagged items of ``n``; two-sided ``1−alpha``.

    Each side's error ``alpha/2`` is split equally between the item bound and
    the judge bound (see module docs).  ``extra`` keeps the uncorrected observed
    rate with its own Clopper–Pearson interval at the full level (what a plain
    proportion gate would have decided on) next to the judge's sensitivity and
    specificity with the bounds actually used.
    """
    key = (method or "rogan-gladen").lower()
    if key not in JUDGED_METHODS:
        raise StatsError(
            f"unknown judged-rate method {method!r}; use one of: {', '.join(JUDGED_METHODS)}"
        )
    if n < 1 or not 0 <= events <= n:
        raise StatsError(f"events={events} of n={n}: need n ≥ 1 and 0 ≤ events ≤ n")
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha={alpha!r} must lie in (0, 1)")
    share = alpha / 2.0  # two-sided level of each component: one-sided alpha/4 per bound
    q = events / n
    q_lo, q_hi = _cp(events, n, share)
    se_lo, se_hi = _cp(judge.true_pos, judge.positives, share)
    sp_lo, sp_hi = _cp(judge.true_neg, judge.negatives, share)
    fpr_hi = 1.0 - sp_lo
    lo, hi = _lower(q_lo, fpr_hi), _upper(q_hi, se_lo)
    value = rogan_gladen(q, judge.sensitivity, judge.specificity)
    naive_lo, naive_hi = _cp(events, n, alpha)
    extra: dict[str, Any] = {
        "observed": {"events": events, "n": n, "rate": q, "lo": naive_lo, "hi": naive_hi,
                     "method": _CP, "alpha": alpha},
        "observed_bounds_used": [q_lo, q_hi],
        "sensitivity": {"value": judge.sensitivity, "lo": se_lo, "hi": se_hi,
                        "true_pos": judge.true_pos, "positives": judge.positives},
        "specificity": {"value": judge.specificity, "lo": sp_lo, "hi": sp_hi,
                        "true_neg": judge.true_neg, "negatives": judge.negatives},
        "component_alpha": share,
        "youden": judge.sensitivity + judge.specificity - 1.0,
        "upper_vacuous": hi >= 1.0,
        "lower_vacuous": lo <= 0.0,
        "method_key": key,
    }  # fmt: skip
    return Estimate(
        value=value,
        lo=lo,
        hi=hi,
        n=n,
        method=JUDGED_METHODS[key],
        alpha=alpha,
        sided=Sided.TWO,
        extra=extra,
    )


# --------------------------------------------------------------------------- planning


def _part(estimate: Estimate, name: str) -> dict[str, Any]:
    part = estimate.extra.get(name)
    if not isinstance(part, dict):
        raise StatsError(
            f"estimate has no '{name}' record; it was not made by judged_rate_estimate"
        )
    return part


def _show_upper(estimate: Estimate, threshold: float) -> bool:
    """The only reachable side: with the judge-robust bounds, ``p < t`` can be shown only
    while the observed rate is below ``t`` (the upper bound is ``q_hi / Se_lo ≥ q_hi``) and
    ``p > t`` only while it is above ``t`` (the lower bound is ≤ ``q_lo``)."""
    return float(_part(estimate, "observed")["rate"]) < threshold


def judged_n_needed(
    estimate: Estimate, threshold: float, *, alpha: float, power: float = 0.8
) -> int | None:
    """Items that would decide the gate with the judge and labelled set unchanged.

    ``alpha`` is the gate's one-sided level.  To show ``p < t`` the observed rate
    must fall below ``t·Se_lo``; to show ``p > t`` it must exceed
    ``t + (1 − t)·f_hi``.  None when the observed rate is on the wrong side of
    that line: no number of items helps, only a better-measured judge.
    """
    observed = _part(estimate, "observed")
    q = float(observed["rate"])
    if _show_upper(estimate, threshold):
        target = threshold * float(_part(estimate, "sensitivity")["lo"])
        if not q < target:
            return None
    else:
        fpr_hi = 1.0 - float(_part(estimate, "specificity")["lo"])
        target = threshold + (1.0 - threshold) * fpr_hi
        if not (q > target and target < 1.0):
            return None
    return n_for_proportion(q, target, alpha=alpha / 2.0, power=power)


def labelled_needed(rate: float, bound: float, *, alpha: float, lower: bool) -> int | None:
    """Labelled rows at which a judge with true ``rate`` gets its exact one-sided (1−α) bound
    past ``bound`` (``lower``: lower bound ≥ bound), assuming the observed share equals
    ``rate``.  None when ``rate`` itself is on the wrong side: a better judge is needed."""
    if (lower and rate <= bound) or (not lower and rate >= bound):
        return None

    def ok(m: int) -> bool:
        k = round(rate * m)
        lo, hi = _cp(k, m, 2 * alpha)
        return lo >= bound if lower else hi <= bound

    hi_m = 8
    while not ok(hi_m):
        hi_m *= 2
        if hi_m > 10_000_000:
            return None
    lo_m = hi_m // 2
    while hi_m - lo_m > 1:
        mid = (lo_m + hi_m) // 2
        lo_m, hi_m = (lo_m, mid) if ok(mid) else (mid, hi_m)
    return hi_m


def _judge_clause(
    part: dict[str, Any], need: float, *, what: str, rows: str, count: int, alpha: float
) -> str:
    msg = (
        f"a judge whose {what} lower bound is ≥ {need:.3f} would decide it (measured "
        f"{part['value']:.3f}, bound {part['lo']:.3f} on {count:,} labelled {rows})"
    )
    m = labelled_needed(float(part["value"]), need, alpha=alpha, lower=True)
    if m is None:
        return msg + f"; this judge's {what} is too low — a better judge is needed"
    return msg + f"; at the measured {what} that takes about {m:,} labelled {rows}"


def judged_advice(estimate: Estimate, threshold: float, *, alpha: float) -> str:
    """What judge quality or labelled-set size would decide an INCONCLUSIVE judged gate.

    ``alpha`` is the gate's one-sided level; judge bounds use ``alpha/2``.  Only the
    side the observed rate points to can be reached (see :func:`_show_upper`).
    """
    observed = _part(estimate, "observed")
    q = float(observed["rate"])
    q_lo, q_hi = (float(x) for x in estimate.extra["observed_bounds_used"])
    comp = alpha / 2.0
    n = int(observed["n"])
    if _show_upper(estimate, threshold):
        sens = _part(estimate, "sensitivity")
        need_now = q_hi / threshold
        if need_now <= 1.0:
            return _judge_clause(
                sens, need_now, what="sensitivity", rows="events", count=int(sens["positives"]),
                alpha=comp,
            )  # fmt: skip
        msg = (
            f"even a perfect judge would need more than n={n:,} items (the observed rate's "
            f"own bound {q_hi:.4g} is above {threshold:g})"
        )
        if float(sens["lo"]) * threshold <= q:
            msg += (
                f", and with this judge no number of items suffices: its sensitivity bound "
                f"{sens['lo']:.3f} must exceed {q / threshold:.3f}"
            )
        return msg
    spec = _part(estimate, "specificity")
    need_fpr_now = (q_lo - threshold) / (1.0 - threshold)
    if need_fpr_now > 0.0:
        return _judge_clause(
            spec, 1.0 - need_fpr_now, what="specificity", rows="non-events",
            count=int(spec["negatives"]), alpha=comp,
        )  # fmt: skip
    msg = (
        f"even a perfect judge would need more than n={n:,} items (the observed rate's "
        f"lower bound {q_lo:.4g} is not above {threshold:g})"
    )
    need_sp = 1.0 - (q - threshold) / (1.0 - threshold)
    if float(spec["lo"]) <= need_sp:
        msg += (
            f", and with this judge no number of items suffices: its specificity bound "
            f"{spec['lo']:.3f} must exceed {need_sp:.3f}"
        )
    return msg
