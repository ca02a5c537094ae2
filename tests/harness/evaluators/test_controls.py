"""Oracle and mutant control subjects (harness/evaluators/controls.py)."""

from __future__ import annotations

import ast

import pytest

from harness.decision import Verdict
from harness.errors import HarnessError
from harness.evaluators.controls import (
    CONTROL_EXPECTATIONS,
    FaultKind,
    MutantControl,
    OracleControl,
    inject_fault,
)
from harness.evaluators.humaneval import build_program, load_tasks
from harness.spec import load_phase

TASKS = load_tasks()


def test_oracle_returns_canonical_solutions() -> None:
    task = TASKS[5]
    assert OracleControl().completions(task, 3) == [task.canonical_solution] * 3


def test_mutant_breaks_an_exact_seeded_fraction_independent_of_order() -> None:
    mutant = MutantControl(seed=7, broken_fraction=0.6)
    broken = mutant.broken_tasks(TASKS)
    assert len(broken) == round(0.6 * 164)
    assert mutant.broken_tasks(list(reversed(TASKS))) == broken  # order does not matter
    assert MutantControl(seed=7, broken_fraction=0.6).broken_tasks(TASKS) == broken
    assert MutantControl(seed=8, broken_fraction=0.6).broken_tasks(TASKS) != broken
    assert MutantControl(broken_fraction=0.0).broken_tasks(TASKS) == frozenset()


def test_mutant_samples_are_deterministic_and_faulty_at_the_seeded_rate() -> None:
    mutant = MutantControl(seed=3, fault_rate=0.85)
    task = TASKS[0]
    first = mutant.completions_for(task, 16, broken=True)
    assert first == mutant.completions_for(task, 16, broken=True)
    assert mutant.completions_for(task, 16, broken=False) == [task.canonical_solution] * 16
    faulty = [mutant.sample_is_faulty(t.task_id, s) for t in TASKS for s in range(16)]
    rate = sum(faulty) / len(faulty)
    assert abs(rate - 0.85) < 0.03  # 2,624 draws: ±3 points is > 3 standard errors


@pytest.mark.parametrize("kind", list(FaultKind))
def test_every_fault_is_a_real_code_change_that_still_compiles(kind: FaultKind) -> None:
    for task in TASKS:
        body = inject_fault(task, kind)
        assert body != task.canonical_solution
        compile(build_program(task, body), task.task_id, "exec")


def test_flip_operator_changes_exactly_one_operator() -> None:
    task = load_tasks(task_ids=["HumanEval/0"])[0]
    body = inject_fault(task, FaultKind.FLIP_OPERATOR)
    before = ast.dump(ast.parse("def f():\n" + task.canonical_solution))
    after = ast.dump(ast.parse("def f():\n" + body))
    assert before != after
    # the first operator met in source order is `idx != idx2`; it becomes `==`, nothing else
    assert "idx == idx2" in body
    assert "distance < threshold" in body and "elem - elem2" in body


def test_invalid_mutant_parameters_are_rejected() -> None:
    with pytest.raises(HarnessError, match=r"broken_fraction=1\.5"):
        MutantControl(broken_fraction=1.5)


def test_expectations_name_real_gates_and_prove_both_verdicts() -> None:
    phase = load_phase("gates/codegen.yaml")
    ids = {g.id for g in phase.gates}
    for subject, expected in CONTROL_EXPECTATIONS.items():
        assert set(expected) <= ids, subject
    # the oracle covers every gate except the load-dependent concurrency scenarios and the
    # contamination gate, a property of a trained model's corpus (a control has none)
    not_for_oracle = {"latency_p95_high", "latency_p95_stress", "contamination"}
    assert set(CONTROL_EXPECTATIONS["oracle"]) == ids - not_for_oracle
    # between the two controls, the accuracy gates are seen to both PASS and FAIL
    for gate_id in ("pass_at_1", "uplift_16_vs_1"):
        seen = {CONTROL_EXPECTATIONS[s].get(gate_id) for s in ("oracle", "mutant")}
        assert seen == {Verdict.PASS, Verdict.FAIL}, gate_id
