"""Turn an :class:`Estimate` into a PASS / FAIL / INCONCLUSIVE decision.

The bound rule (DESIGN §4): for "metric ≥ t" at level α, PASS when the one-sided
(1−α) lower bound is ≥ t, FAIL when the one-sided (1−α) upper bound is < t,
otherwise INCONCLUSIVE — and then say how many items would decide it.  The
``point`` rule compares the bare estimate and is kept only for compatibility
with legacy scripts; its decisions are labelled ``legacy`` everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from harness.errors import StatsError
from harness.machine_load import LoadReading
from harness.outcomes import Outcome
from harness.spec import DecisionRule, Direction, GateSpec
from harness.stats.estimate import Estimate, Sided

__all__ = [
    "MAX_SANDBOX_ERROR_SHARE",
    "Decision",
    "Verdict",
    "confidence_text",
    "decide",
    "guard_machine_load",
    "guard_sandbox_errors",
    "per_side_alpha",
    "sandbox_error_count",
]


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class Decision:
    """The verdict on one gate, the highest tier met, and why."""

    verdict: Verdict
    tier: str  # "stretch" | "primary" | "fallback" | "none"
    reason: str
    threshold: float
    alpha: float
    rule: DecisionRule
    n_needed: int | None = None
    tier_verdicts: tuple[tuple[str, Verdict], ...] = ()
    #: why a bound-based verdict was downgraded to INCONCLUSIVE (``min_n``,
    #: ``sandbox_errors``), else None; a downgraded gate meets no tier and a multiplicity
    #: adjustment never upgrades it back
    downgraded: str | None = None

    @property
    def legacy(self) -> bool:
        return self.rule is DecisionRule.POINT

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "tier": self.tier,
            "reason": self.reason,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "rule": str(self.rule),
            "n_needed": self.n_needed,
            "tier_verdicts": [[name, str(v)] for name, v in self.tier_verdicts],
            "downgraded": self.downgraded,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(
            verdict=Verdict(data["verdict"]),
            tier=str(data["tier"]),
            reason=str(data["reason"]),
            threshold=float(data["threshold"]),
            alpha=float(data["alpha"]),
            rule=DecisionRule(data["rule"]),
            n_needed=data.get("n_needed"),
            tier_verdicts=tuple(
                (str(name), Verdict(v)) for name, v in data.get("tier_verdicts", [])
            ),
            downgraded=data.get("downgraded"),
        )


def confidence_text(alpha: float) -> str:
    """The real one-sided confidence of a bound at level ``alpha``: '98.75 %', never rounded
    up to '99 %' (a Bonferroni level α/m rarely gives a whole percentage)."""
    text = f"{100.0 * (1.0 - alpha):.4f}".rstrip("0").rstrip(".")
    return f"{text} %"


def per_side_alpha(estimate: Estimate) -> float:
    """Error rate of each bound of ``estimate`` taken as a one-sided bound."""
    return estimate.alpha / 2.0 if estimate.sided is Sided.TWO else estimate.alpha


def _tier_verdict(
    direction: Direction, rule: DecisionRule, estimate: Estimate, threshold: float
) -> Verdict:
    if rule is DecisionRule.POINT:
        ok = (
            estimate.value >= threshold
            if direction is Direction.GE
            else (estimate.value <= threshold)
        )
        return Verdict.PASS if ok else Verdict.FAIL
    if direction is Direction.GE:
        if estimate.lo >= threshold:
            return Verdict.PASS
        if estimate.hi < threshold:
            return Verdict.FAIL
        return Verdict.INCONCLUSIVE
    if estimate.hi <= threshold:
        return Verdict.PASS
    if estimate.lo > threshold:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE


def decide(
    spec: GateSpec,
    estimate: Estimate,
    *,
    alpha: float,
    n_needed: Callable[[float], int | None] | None = None,
    advice: Callable[[float], str | None] | None = None,
) -> Decision:
    """Decide ``spec`` on ``estimate`` at one-sided level ``alpha``.

    ``n_needed(threshold)`` is asked for the sample size that would make an
    INCONCLUSIVE gate decidable (from the power planner); it may return None.
    ``advice(threshold)`` may add what else would decide it (e.g. a better-measured
    judge for a judged rate); it is appended to an INCONCLUSIVE reason.
    Raises :class:`StatsError` if the estimate's bounds are looser than α asks,
    because deciding on a 90 % bound while claiming 95 % would overstate evidence.
    """
    _require_bounds_at_alpha(spec, estimate, alpha)
    tier_verdicts = tuple(
        (name, _tier_verdict(spec.direction, spec.rule, estimate, threshold))
        for name, threshold in spec.tiers.items()
    )
    required_name, required_threshold = spec.tiers.required
    verdict = dict(tier_verdicts)[required_name]
    met = [name for name, v in tier_verdicts if v is Verdict.PASS]
    tier = met[0] if met else "none"
    head = _headline(spec, estimate, alpha)
    why, needed = _why(spec, verdict, required_threshold, n_needed=n_needed, advice=advice)
    decision = Decision(
        verdict=verdict,
        tier=tier,
        reason=f"{verdict}: {head} — {why}; highest tier met: {tier}",
        threshold=required_threshold,
        alpha=alpha,
        rule=spec.rule,
        n_needed=needed,
        tier_verdicts=tier_verdicts,
    )
    if spec.min_n is not None and estimate.n < spec.min_n and verdict is Verdict.PASS:
        return _too_few_items(decision, head=head, n=estimate.n, min_n=spec.min_n)
    return decision


def _require_bounds_at_alpha(spec: GateSpec, estimate: Estimate, alpha: float) -> None:
    """Refuse bounds looser than the gate's α (a bound rule would overstate the evidence)."""
    if spec.rule is DecisionRule.BOUND and per_side_alpha(estimate) > alpha + 1e-12:
        raise StatsError(
            f"gate '{spec.id}': estimate bounds have one-sided error {per_side_alpha(estimate):g} "
            f"but the gate needs α={alpha:g}; compute the estimate with alpha={2 * alpha:g} "
            "(two-sided)"
        )


def _headline(spec: GateSpec, estimate: Estimate, alpha: float) -> str:
    """'gate: value (bounds [lo, hi], each one-sided 98.3 %; method; n=…) vs tier ≥ t'."""
    required_name, required_threshold = spec.tiers.required
    sym = "≥" if spec.direction is Direction.GE else "≤"
    bounds = f"[{estimate.lo:.4g}, {estimate.hi:.4g}]"
    return (
        f"{spec.id}: {estimate.value:.4g} (bounds {bounds}, each one-sided "
        f"{confidence_text(alpha)}; "
        f"{estimate.method}; n={estimate.n}) vs {required_name} {sym} {required_threshold:g}"
    )


def _why(
    spec: GateSpec,
    verdict: Verdict,
    threshold: float,
    *,
    n_needed: Callable[[float], int | None] | None,
    advice: Callable[[float], str | None] | None,
) -> tuple[str, int | None]:
    """Why the required tier got ``verdict``, and (INCONCLUSIVE only) the n that would decide."""
    if spec.rule is DecisionRule.POINT:
        return "legacy point rule: the point estimate alone decided, no confidence bound used", None
    if verdict is Verdict.PASS:
        side = "lower" if spec.direction is Direction.GE else "upper"
        return f"{side} bound clears the threshold", None
    if verdict is Verdict.FAIL:
        side = "upper" if spec.direction is Direction.GE else "lower"
        return f"{side} bound is on the wrong side of the threshold", None
    needed = n_needed(threshold) if n_needed is not None else None
    why = "the confidence interval straddles the threshold"
    if needed is not None:
        why += f"; about n ≥ {needed:,} items would decide it"
    hint = advice(threshold) if advice is not None else None
    if hint:
        why += f"; {hint}"
    return why, needed


def _too_few_items(decision: Decision, *, head: str, n: int, min_n: int) -> Decision:
    """A PASS on fewer than ``min_n`` items becomes INCONCLUSIVE and meets no tier."""
    return replace(
        decision,
        verdict=Verdict.INCONCLUSIVE,
        reason=(
            f"{Verdict.INCONCLUSIVE}: {head} — only n={n} items but the gate requires min_n={min_n}"
        ),
        n_needed=min_n,
        tier="none",  # an undecided gate meets no tier (the codegen ladder reads this)
        tier_verdicts=tuple(
            (name, Verdict.INCONCLUSIVE if v is Verdict.PASS else v)
            for name, v in decision.tier_verdicts
        ),
        downgraded="min_n",
    )


#: above this share of items the sandbox (not the subject) failed, no verdict is trusted
MAX_SANDBOX_ERROR_SHARE = 0.02


def sandbox_error_count(outcomes: Sequence[Outcome]) -> int:
    """Items whose value came from a ``sandbox_error`` that survived its retry.

    Evaluators mark them in ``Outcome.raw`` (``status == "sandbox_error"`` or a true
    ``sandbox_error`` flag); they are scored as failures so one broken program never
    stops a run, and counted here so the decision can say how many there were.
    """
    return sum(
        1 for o in outcomes if o.raw.get("status") == "sandbox_error" or o.raw.get("sandbox_error")
    )


def guard_sandbox_errors(
    decision: Decision,
    *,
    errors: int,
    total: int,
    max_share: float = MAX_SANDBOX_ERROR_SHARE,
) -> Decision:
    """Say how many items hit sandbox errors; above ``max_share`` the verdict is INCONCLUSIVE.

    A sandbox error is scored as a failure of its item, which is a guess: the item
    might have passed. A few guesses cannot move a decision much, many can (in either
    direction, depending on the gate), so past the threshold no PASS or FAIL is
    claimed — the run must be repeated on a healthy sandbox.
    """
    if errors <= 0 or total <= 0:
        return decision
    note = f"{errors} of {total} items hit sandbox errors (scored as failures)"
    if errors / total <= max_share:
        return replace(decision, reason=f"{decision.reason}; {note}")
    return replace(
        decision,
        verdict=Verdict.INCONCLUSIVE,
        tier="none",  # a guessed verdict meets no tier, on either side
        tier_verdicts=tuple((name, Verdict.INCONCLUSIVE) for name, _ in decision.tier_verdicts),
        downgraded="sandbox_errors",
        n_needed=None,
        reason=(
            f"{Verdict.INCONCLUSIVE}: {note} — {errors / total:.1%} is above the "
            f"{max_share:.0%} the harness trusts, so the verdict would have been a guess "
            f"(it would have been {decision.verdict}: {decision.reason})"
        ),
    )


def guard_machine_load(decision: Decision, *, load: LoadReading | None) -> Decision:
    """A FAIL timed on an overloaded machine becomes INCONCLUSIVE; nothing becomes PASS.

    ``load`` is attached by evaluators only to timings where contention can only make
    the subject look worse (see :func:`harness.machine_load.machine_load_of`): then a
    PASS measured under load is still earned, but a FAIL may describe the machine
    rather than the subject, so no FAIL is claimed when the reading breaks the
    documented limits (:data:`harness.machine_load.MAX_LOAD_PER_CPU`,
    :data:`~harness.machine_load.MIN_CPU_SHARE`); the run must be repeated on a
    quieter machine.  Within the limits nothing changes (the reading is in the evidence);
    over them, the reason says so whatever the verdict.
    """
    if load is None:
        return decision
    why = load.overloaded()
    if why is None:
        return decision
    if decision.verdict is not Verdict.FAIL:
        note = f"timed at {load.summary()} (over the limits: {why})"
        return replace(decision, reason=f"{decision.reason}; {note}")
    return replace(
        decision,
        verdict=Verdict.INCONCLUSIVE,
        tier="none",
        tier_verdicts=tuple(
            (name, Verdict.INCONCLUSIVE if v is Verdict.FAIL else v)
            for name, v in decision.tier_verdicts
        ),
        downgraded="machine_load",
        n_needed=None,
        reason=(
            f"{Verdict.INCONCLUSIVE}: the machine was overloaded while this was timed "
            f"({why}; {load.summary()}) — under contention the timing describes the machine, "
            "not the subject, so no FAIL is claimed; rerun on a quieter machine "
            f"(it would have been {decision.verdict}: {decision.reason})"
        ),
    )
