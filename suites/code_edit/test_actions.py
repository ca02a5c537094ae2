"""Stage 1 action gates and the teacher-trajectory filter (gates/code_edit.yaml).

``srl_verified_steps``: the program teacher's raw trajectories on the train/dev
records, filtered by sandbox verification; the per-source stats (kept, dropped
and why) are the gate's evidence.  Control: a teacher proposing empty rules must
FAIL (nothing survives the filter).

Held-out records are the test-split rows with a ground-truth action or tests.  Every
action — the model's or a control's — goes through the same validator
(``harness.evaluators.code_edit_actions``): the real ast-grep binary inside the
hardened Docker sandbox.  Controls: the ground-truth action (on the records that
have one) must PASS both rates; an empty rule must FAIL both.  The model subject
plugs in through the ``stage1_action_subject`` fixture (conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from harness.data.code_edit.action import parse_action
from harness.data.code_edit.schema import NormalizedRecord
from harness.decision import Verdict
from harness.evaluators.code_edit import load_rows
from harness.evaluators.code_edit_actions import (
    ActionOutcome,
    ActionSubject,
    heldout_action_records,
    outcomes_for_gate,
    validate_actions,
)
from harness.evaluators.code_edit_trajectories import FilterReport, step_outcomes
from harness.gate import Gate
from sandbox.base import Sandbox
from trainers.code_edit.teacher import Teacher

pytestmark = [
    pytest.mark.phase("code_edit"),
    pytest.mark.xdist_group("code_edit"),
    pytest.mark.docker,
]

EMPTY_RULE = "id: empty\nlanguage: python\nrule: {}\nfix: ''\n"


@pytest.fixture(scope="session")
def heldout(code_edit_data: Path) -> list[NormalizedRecord]:
    return heldout_action_records(load_rows(code_edit_data))


def ground_truth_subject(records: Sequence[NormalizedRecord]) -> list[str]:
    """Control: the record's own action as canonical rule YAML (must PASS)."""
    return [parse_action(r.action or {}).rule_yaml() for r in records]


def empty_rule_subject(records: Sequence[NormalizedRecord]) -> list[str]:
    """Control: a rule with no matcher (must FAIL)."""
    return [EMPTY_RULE for _ in records]


_RESULTS: dict[str, list[ActionOutcome]] = {}


def _validated(
    name: str, subject: ActionSubject, heldout: list[NormalizedRecord], box: Sandbox
) -> list[ActionOutcome]:
    """One validation per subject and session, shared by the parse and success gates."""
    if name not in _RESULTS:
        _RESULTS[name] = validate_actions(heldout, list(subject(heldout)), sandbox=box)
    return _RESULTS[name]


def _check(
    gate: Gate,
    metric: str,
    results: list[ActionOutcome],
    box: Sandbox,
    *,
    subject: str,
    expect: Verdict | None = None,
) -> None:
    reasons: dict[str, int] = {}
    for r in results:
        key = r.reason.split(":", 1)[0]
        reasons[key] = reasons.get(key, 0) + 1
    gate.check(
        outcomes_for_gate(results, metric),
        subject=subject,
        expect=expect,
        sandbox="docker",
        extra={"reasons": reasons, "n_heldout": len(results), "sandbox": box.describe()},
    )


CONTROLS: dict[str, tuple[Callable[[Sequence[NormalizedRecord]], list[str]], Verdict]] = {
    "ground_truth": (ground_truth_subject, Verdict.PASS),
    "empty_rule": (empty_rule_subject, Verdict.FAIL),
}


def _model_results(
    subject: ActionSubject, heldout: list[NormalizedRecord], box: Sandbox
) -> list[ActionOutcome]:
    if not heldout:
        pytest.skip("no held-out record with a ground-truth action or tests in this data")
    return _validated("stage1", subject, heldout, box)


def _control_results(
    gate: Gate, control: str, heldout: list[NormalizedRecord], box: Sandbox
) -> tuple[list[ActionOutcome], Verdict]:
    """The ground truth is judged on the records that have one; the empty rule on all."""
    subject, expect = CONTROLS[control]
    records = [r for r in heldout if r.action is not None] if control == "ground_truth" else heldout
    if not records:
        gate.no_claim("no held-out record to run this control on", subject=control)
    return _validated(control, subject, records, box), expect


@pytest.mark.gate("action_parse_rate")
def test_action_parse_rate(
    gate: Gate,
    stage1_action_subject: ActionSubject,
    heldout: list[NormalizedRecord],
    astgrep_sandbox: Sandbox,
) -> None:
    results = _model_results(stage1_action_subject, heldout, astgrep_sandbox)
    _check(gate, "parse", results, astgrep_sandbox, subject="stage1_sft")


@pytest.mark.gate("action_success_rate")
def test_action_success_rate(
    gate: Gate,
    stage1_action_subject: ActionSubject,
    heldout: list[NormalizedRecord],
    astgrep_sandbox: Sandbox,
) -> None:
    results = _model_results(stage1_action_subject, heldout, astgrep_sandbox)
    _check(gate, "success", results, astgrep_sandbox, subject="stage1_sft")


@pytest.mark.gate("action_parse_rate")
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_action_parse_rate_control(
    gate: Gate, control: str, heldout: list[NormalizedRecord], astgrep_sandbox: Sandbox
) -> None:
    results, expect = _control_results(gate, control, heldout, astgrep_sandbox)
    _check(gate, "parse", results, astgrep_sandbox, subject=control, expect=expect)


@pytest.mark.gate("action_success_rate")
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_action_success_rate_control(
    gate: Gate, control: str, heldout: list[NormalizedRecord], astgrep_sandbox: Sandbox
) -> None:
    results, expect = _control_results(gate, control, heldout, astgrep_sandbox)
    _check(gate, "success", results, astgrep_sandbox, subject=control, expect=expect)


class _EmptyRuleTeacher:
    """Control teacher: proposes an empty rule for every record (nothing may survive)."""

    name = "control:empty_rule"

    def propose(self, records: Sequence[NormalizedRecord]) -> list[str]:
        return empty_rule_subject(records)


@pytest.mark.gate("srl_verified_steps")
def test_srl_verified_steps(
    gate: Gate, srl_filtered: FilterReport, astgrep_sandbox: Sandbox
) -> None:
    """The program teacher's filtered steps — the same dataset the SRL stage trains on."""
    report = srl_filtered
    gate.check(
        step_outcomes(report),
        subject="program_teacher",
        sandbox="docker",
        extra={**report.as_dict(), "sandbox": astgrep_sandbox.describe()},
    )


@pytest.mark.gate("srl_verified_steps")
def test_srl_verified_steps_control_empty_rule_teacher(
    gate: Gate, run_srl_filter: Callable[[Teacher], FilterReport]
) -> None:
    report = run_srl_filter(_EmptyRuleTeacher())
    gate.check(
        step_outcomes(report),
        subject="empty_rule_teacher",
        expect=Verdict.FAIL,
        extra=report.as_dict(),
    )
