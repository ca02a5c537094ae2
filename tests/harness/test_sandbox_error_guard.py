"""A sandbox failure is one item's failure, counted; past a threshold no verdict is claimed."""

from __future__ import annotations

from typing import Any

import pytest

from harness.decision import (
    MAX_SANDBOX_ERROR_SHARE,
    Verdict,
    decide,
    guard_sandbox_errors,
    sandbox_error_count,
)
from harness.gate import Gate, GateOptions
from harness.outcomes import Outcome
from harness.spec import GateSpec, PhaseSpec
from harness.stats.estimate import Estimate


def _spec(direction: str = "ge") -> GateSpec:
    return GateSpec(
        id="g",
        metric="proportion",
        direction=direction,  # type: ignore[arg-type]
        tiers={"primary": 0.6},
    )


def _decision(verdict_bounds: tuple[float, float, float], direction: str = "ge") -> Any:
    v, lo, hi = verdict_bounds
    est = Estimate(value=v, lo=lo, hi=hi, n=820, method="Clopper–Pearson exact", alpha=0.1)
    return decide(_spec(direction), est, alpha=0.05)


class TestGuard:
    @pytest.mark.parametrize("bounds", [(0.8, 0.75, 0.85), (0.3, 0.25, 0.35), (0.6, 0.55, 0.65)])
    def test_no_errors_changes_nothing(self, bounds: tuple[float, float, float]) -> None:
        d = _decision(bounds)
        assert guard_sandbox_errors(d, errors=0, total=820) == d

    @pytest.mark.parametrize("verdict_bounds", [(0.8, 0.75, 0.85), (0.3, 0.25, 0.35)])
    def test_few_errors_keep_the_verdict_and_are_reported(
        self, verdict_bounds: tuple[float, float, float]
    ) -> None:
        d = _decision(verdict_bounds)
        g = guard_sandbox_errors(d, errors=3, total=820)
        assert g.verdict is d.verdict
        assert "3 of 820 items hit sandbox errors" in g.reason

    @pytest.mark.parametrize(
        "verdict_bounds,direction",
        [((0.8, 0.75, 0.85), "ge"), ((0.3, 0.25, 0.35), "ge"), ((0.3, 0.25, 0.35), "le")],
    )
    def test_many_errors_make_any_verdict_inconclusive(
        self, verdict_bounds: tuple[float, float, float], direction: str
    ) -> None:
        d = _decision(verdict_bounds, direction)
        errors = int(820 * MAX_SANDBOX_ERROR_SHARE) + 1
        g = guard_sandbox_errors(d, errors=errors, total=820)
        assert g.verdict is Verdict.INCONCLUSIVE
        assert f"{errors} of 820 items hit sandbox errors" in g.reason
        assert str(d.verdict) in g.reason  # what it would have been stays visible
        # a guessed verdict meets no tier (the codegen ladder reads it) and is marked, so a
        # multiplicity adjustment cannot upgrade it back to PASS
        assert g.tier == "none" and g.downgraded == "sandbox_errors"
        assert {v for _, v in g.tier_verdicts} == {Verdict.INCONCLUSIVE}
        assert type(g).from_dict(g.to_dict()) == g

    def test_threshold_is_inclusive_of_the_boundary(self) -> None:
        d = _decision((0.8, 0.75, 0.85))
        assert guard_sandbox_errors(d, errors=2, total=100).verdict is Verdict.PASS
        assert guard_sandbox_errors(d, errors=3, total=100).verdict is Verdict.INCONCLUSIVE


def test_outcomes_mark_sandbox_errors_by_status_or_flag() -> None:
    outs = [
        Outcome("a", 0.0, raw={"status": "sandbox_error"}),
        Outcome("b", 0.0, raw={"sandbox_error": True}),
        Outcome("c", 0.0, raw={"status": "incomplete"}),
        Outcome("d", 1.0, raw={"status": "passed"}),
        Outcome("e", 0.0),
    ]
    assert sandbox_error_count(outs) == 2


def test_gate_evaluate_applies_the_guard() -> None:
    phase = PhaseSpec.model_validate({"phase": "p", "gates": [_spec().model_dump(mode="json")]})
    gate = Gate(phase=phase, spec=phase.gates[0], options=GateOptions())
    good = [Outcome(f"i{i}", 1.0, raw={"status": "passed"}) for i in range(400)]
    _, clean, _ = gate.evaluate(good)
    assert clean.verdict is Verdict.PASS
    broken = good[:380] + [
        Outcome(f"x{i}", 0.0, raw={"status": "sandbox_error"}) for i in range(20)
    ]
    _, d, _ = gate.evaluate(broken)
    assert d.verdict is Verdict.INCONCLUSIVE and "20 of 400 items hit sandbox errors" in d.reason
