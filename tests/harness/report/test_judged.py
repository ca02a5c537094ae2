"""The judged-gate table renders the evidence's numbers (and nothing for other gates)."""

from __future__ import annotations

import contextlib

import pytest

from harness.evidence import EvidenceRecord
from harness.gate import Gate, GateOptions, InconclusiveMode
from harness.outcomes import Outcome
from harness.report.judged import judged_table
from harness.report.markdown import render_markdown
from harness.report.summary import GateRow
from harness.spec import PhaseSpec

PHASE = PhaseSpec.model_validate(
    {
        "phase": "judged",
        "multiplicity": "none",
        "gates": [
            {"id": "slip", "metric": "judged_proportion", "direction": "le",
             "tiers": {"primary": 0.05}},
            {"id": "plain", "metric": "proportion", "direction": "le", "tiers": {"primary": 0.05}},
        ],
    }
)  # fmt: skip


def _record(gate_id: str, **kw: object) -> EvidenceRecord:
    gate = Gate(PHASE, PHASE.gate(gate_id), options=GateOptions(inconclusive=InconclusiveMode.PASS))
    outs = [Outcome(f"i{i}", float(i < 3)) for i in range(200)]
    with contextlib.suppress(pytest.fail.Exception):
        gate.check(outs, **kw)  # type: ignore[arg-type]
    assert gate.last_record is not None
    return gate.last_record


def _calibration() -> list[Outcome]:
    return [Outcome(f"p{i}", float(i < 45), raw={"label": 1}) for i in range(50)] + [
        Outcome(f"n{i}", float(i < 2), raw={"label": 0}) for i in range(50)
    ]


def test_table_row_comes_from_the_estimate() -> None:
    rec = _record("slip", baseline=_calibration())
    lines = judged_table([GateRow(rec)])
    row = next(line for line in lines if line.startswith("| `slip`"))
    extra = rec.estimate["extra"]
    assert "(3/200)" in row and "(45/50)" in row and "(48/50)" in row
    assert f"{extra['sensitivity']['lo']:.4g}" in row
    assert f"{rec.estimate['hi']:.4g}" in row and f"**{rec.decision['verdict']}**" in row
    assert judged_table([GateRow(_record("plain"))]) == []
    md = render_markdown([rec, _record("plain")])
    assert md.count("#### Judged gates") == 1
