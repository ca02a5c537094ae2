"""The docs' tables are printed from a phase result and its evidence, not typed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import DataValidationError
from trainers.circuit_breaker.doc_tables import (
    render,
    replace_block,
    run_rates_table,
    verdict_table,
)


def _row(
    kind: str, *, correct: bool, harmful: bool = False, group: str | None = None
) -> dict[str, Any]:
    return {
        "kind": kind, "correct": correct, "harmful": harmful, "no_tool_call": False,
        "coherent": True, "group": group,
    }  # fmt: skip


PHASE: dict[str, Any] = {
    "config_digest": "abcdef0123456789",
    "arm_seeds": [0],
    "counts": {"eval_attacks": 2, "eval_benign": 1},
    "results": {
        "baseline": [
            _row("attack", correct=False, harmful=True, group="seen"),
            _row("attack", correct=True, group="heldout_tool"),
            _row("benign", correct=True),
        ],
        "adv_sft-seed0": [_row("attack", correct=True, group="seen")] * 2
        + [_row("benign", correct=False)],
        "cb-seed0": [_row("attack", correct=True, group="seen")] * 2
        + [_row("benign", correct=True)],
    },
    "wall_s": {"baseline_sft": 10.0, "cpu_total": 42.5},
}


def test_run_rates_come_from_the_raw_rows() -> None:
    table = run_rates_table(PHASE)
    assert "| baseline | 0.5 | 0.5 | 0 | 1 | 0 (of 3) |" in table
    assert "| adv_sft-seed0 | 1 | 0 | 0 | 0 | 0 (of 3) |" in table


def test_verdicts_are_the_evidence_s_with_per_seed_values() -> None:
    ev = {
        "phase": "circuit_breaker", "gate": "correct_behavior_rate", "subject": "cb",
        "direction": "ge",
        "estimate": {"value": 0.6, "lo": 0.55, "hi": 0.65},
        "decision": {"verdict": "FAIL", "threshold": 0.7},
        "extra": {"per_seed": {"cb-seed0": {"value": 0.6}, "cb-seed1": {"value": 0.8}}},
    }  # fmt: skip
    assert "| correct_behavior_rate | cb | ≥ 0.7 | 0.6 [0.55, 0.65] | 0.6 / 0.8 | **FAIL** |" in (
        verdict_table([ev])
    )
    out = render(PHASE, [ev, {**ev, "phase": "codegen"}], "User time (seconds): 1.5\n")
    assert out.count("correct_behavior_rate") == 1  # other phases' evidence is left out
    assert "CPU seconds of the phase process** | **42.5**" in out


def test_a_docs_block_is_replaced_between_its_markers_and_a_missing_marker_is_an_error() -> None:
    doc = "intro\n<!-- cb-results:begin -->\nold table\n<!-- cb-results:end -->\noutro\n"
    new = replace_block(doc, "cb-results", "| new |\n")
    assert new == "intro\n<!-- cb-results:begin -->\n| new |\n<!-- cb-results:end -->\noutro\n"
    assert replace_block(new, "cb-results", "| new |") == new  # idempotent
    with pytest.raises(DataValidationError, match="cb-sweep:begin"):
        replace_block(doc, "cb-sweep", "x")
