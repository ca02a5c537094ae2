"""Code-edit data gates (gates/code_edit.yaml) on the embedded default data set.

The subject is the processed data on disk.  Controls: a copy with one blank
instruction must FAIL ``schema_violations``; a copy with a train row duplicated
into test must FAIL ``split_leakage``; ten test rows must FAIL ``test_count``; a
codemod row whose fix was replaced must FAIL ``action_mismatches``; ten judged
action rows must FAIL ``heldout_action_count``; the data without its train method rows
must FAIL ``shape_gaps``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.code_edit.schema import Split
from harness.data.code_edit.shape import CodeShape, code_shape
from harness.data.code_edit.store import dataset_stats
from harness.decision import Verdict
from harness.evaluators.code_edit import (
    action_outcomes,
    leakage_outcomes,
    load_rows,
    shape_gap_outcomes,
    split_count_outcomes,
    violation_outcomes,
)
from harness.evaluators.code_edit_actions import heldout_action_records
from harness.gate import Gate
from harness.outcomes import Outcome

pytestmark = [pytest.mark.phase("code_edit"), pytest.mark.xdist_group("code_edit")]


def _extra(root: Path) -> dict[str, object]:
    return {"root": str(root), **dataset_stats(load_rows(root)).as_dict()}


def _digest(root: Path) -> str:
    return dataset_stats(load_rows(root)).digest


@pytest.mark.gate("schema_violations")
def test_schema_violations(gate: Gate, code_edit_data: Path) -> None:
    gate.check(
        violation_outcomes(code_edit_data),
        subject="embedded",
        data_digest=_digest(code_edit_data),
        extra=_extra(code_edit_data),
    )


@pytest.mark.gate("schema_violations")
def test_schema_violations_control_blank_instruction(gate: Gate, invalid_row_control: Path) -> None:
    gate.check(violation_outcomes(invalid_row_control), subject="invalid_row", expect=Verdict.FAIL)


@pytest.mark.gate("split_leakage")
def test_split_leakage(gate: Gate, code_edit_data: Path) -> None:
    gate.check(
        leakage_outcomes(load_rows(code_edit_data)),
        subject="embedded",
        data_digest=_digest(code_edit_data),
    )


@pytest.mark.gate("split_leakage")
def test_split_leakage_control_duplicated_row(gate: Gate, leaky_control: Path) -> None:
    gate.check(leakage_outcomes(load_rows(leaky_control)), subject="leaky", expect=Verdict.FAIL)


def _count(gate: Gate, root: Path, split: Split) -> None:
    rows = load_rows(root)
    gate.check(
        split_count_outcomes(rows, split),
        subject="embedded",
        data_digest=_digest(root),
        extra={"by_source": dataset_stats(rows).counts[split.value]},
    )


@pytest.mark.gate("train_count")
def test_train_count(gate: Gate, code_edit_data: Path) -> None:
    _count(gate, code_edit_data, Split.TRAIN)


@pytest.mark.gate("dev_count")
def test_dev_count(gate: Gate, code_edit_data: Path) -> None:
    _count(gate, code_edit_data, Split.DEV)


@pytest.mark.gate("test_count")
def test_test_count(gate: Gate, code_edit_data: Path) -> None:
    _count(gate, code_edit_data, Split.TEST)


@pytest.mark.gate("test_count")
def test_test_count_control_truncated(gate: Gate, code_edit_data: Path) -> None:
    """Ten held-out rows (a generator that lost most of its output) must FAIL the floor."""
    rows = split_count_outcomes(load_rows(code_edit_data), Split.TEST)[:10]
    gate.check(rows, subject="truncated", expect=Verdict.FAIL)


def _action_rows(root: Path) -> list[Outcome]:
    """One outcome per test row the action gates judge (``params.of = n``)."""
    return [
        Outcome(item_id=r.id, value=1.0, cluster=r.source)
        for r in heldout_action_records(load_rows(root))
    ]


@pytest.mark.gate("heldout_action_count")
def test_heldout_action_count(gate: Gate, code_edit_data: Path) -> None:
    gate.check(
        _action_rows(code_edit_data), subject="embedded", data_digest=_digest(code_edit_data)
    )


@pytest.mark.gate("heldout_action_count")
def test_heldout_action_count_control_truncated(gate: Gate, code_edit_data: Path) -> None:
    """Ten judged action rows (the size of the set before the partition) must FAIL."""
    gate.check(_action_rows(code_edit_data)[:10], subject="truncated", expect=Verdict.FAIL)


@pytest.mark.gate("action_mismatches")
def test_action_mismatches(gate: Gate, code_edit_data: Path) -> None:
    gate.check(
        action_outcomes(load_rows(code_edit_data)),
        subject="embedded",
        data_digest=_digest(code_edit_data),
    )


@pytest.mark.gate("action_mismatches")
def test_action_mismatches_control_wrong_fix(gate: Gate, code_edit_data: Path) -> None:
    """The first codemod row with its fix swapped for another rule's: must FAIL."""
    rows = [r for r in load_rows(code_edit_data) if r.action is not None]
    first = rows[0]
    assert first.action is not None
    wrong = first.model_copy(update={"action": {**first.action, "fix": "__wrong__"}})
    gate.check(action_outcomes([wrong]), subject="wrong_fix", expect=Verdict.FAIL)


@pytest.mark.gate("shape_gaps")
def test_shape_gaps(gate: Gate, code_edit_data: Path) -> None:
    outcomes, report = shape_gap_outcomes(load_rows(code_edit_data))
    gate.check(
        outcomes,
        subject="embedded",
        data_digest=_digest(code_edit_data),
        extra=report.as_dict(),
    )


@pytest.mark.gate("shape_gaps")
def test_shape_gaps_control_no_train_methods(gate: Gate, code_edit_data: Path) -> None:
    """The data as generated before train codemods took methods (train rows of method
    shape removed): every held-out method cell is a gap, must FAIL."""
    rows = [
        r
        for r in load_rows(code_edit_data)
        if r.split is not Split.TRAIN or code_shape(r.pre_code) is not CodeShape.METHOD
    ]
    outcomes, _ = shape_gap_outcomes(rows)
    gate.check(outcomes, subject="no_train_methods", expect=Verdict.FAIL)
