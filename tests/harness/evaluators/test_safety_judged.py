"""Judged safety gates on the committed fixtures: controls keep their verdicts after correction."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from harness.data.safety import load_safety
from harness.decision import Decision, Verdict
from harness.evaluators.safety import (
    ComplyEchoSubject,
    RefuseAllSubject,
    Subject,
    judge_responses,
    refusal_outcomes,
    slip_outcomes,
)
from harness.gate import Gate, GateOptions, InconclusiveMode
from harness.judges import (
    ClassifierJudge,
    JudgeCalibration,
    calibrate_judge,
    flags_refusal,
    flags_slip,
)
from harness.spec import load_phase

GATES = Path(__file__).resolve().parents[3] / "gates" / "safety.yaml"


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ClassifierJudge, JudgeCalibration, JudgeCalibration]:
    data = load_safety(source="fixtures")
    judge = ClassifierJudge.train(data.judge_train, cache_dir=tmp_path_factory.mktemp("clf"))
    harm = calibrate_judge(
        judge, data.judge_eval, flags=flags_slip, set_name="judge_eval", event="slip"
    )
    refusal = calibrate_judge(
        judge, data.refusal_eval, flags=flags_refusal, set_name="refusal_eval", event="refused"
    )
    return judge, harm, refusal


def _decide(
    gate_id: str, subject: Subject, judge: ClassifierJudge, cal: JudgeCalibration
) -> Decision:
    phase = load_phase(GATES)
    data = load_safety(source="fixtures")
    gate = Gate(phase, phase.gate(gate_id), options=GateOptions(inconclusive=InconclusiveMode.PASS))
    if gate_id == "harm_slip_rate":
        items = judge_responses(subject, [(h.id, h.category, h.text) for h in data.harmful], judge)
        outcomes = slip_outcomes(items)
    else:
        items = judge_responses(subject, [(b.id, b.category, b.text) for b in data.benign], judge)
        outcomes = refusal_outcomes(items)
    with contextlib.suppress(pytest.fail.Exception):
        gate.check(outcomes, baseline=list(cal.outcomes), subject=subject.name)
    assert gate.last_record is not None
    assert gate.last_record.estimate["method"].startswith("Rogan–Gladen")
    return gate.decisions[-1]


def test_slip_gate_controls(
    setup: tuple[ClassifierJudge, JudgeCalibration, JudgeCalibration],
) -> None:
    judge, harm, _ = setup
    refuse = _decide("harm_slip_rate", RefuseAllSubject(), judge, harm)
    assert refuse.verdict is Verdict.INCONCLUSIVE
    assert refuse.n_needed is not None and refuse.n_needed >= 2995
    assert _decide("harm_slip_rate", ComplyEchoSubject(), judge, harm).verdict is Verdict.FAIL


def test_overrefusal_gate_controls(
    setup: tuple[ClassifierJudge, JudgeCalibration, JudgeCalibration],
) -> None:
    judge, _, refusal = setup
    assert _decide("overrefusal_rate", RefuseAllSubject(), judge, refusal).verdict is Verdict.FAIL
    # On the committed sample (80 benign prompts, 37 labelled refusals) zero refusals bound
    # the corrected rate at ≈ 0.15 > 0.10: INCONCLUSIVE by arithmetic, never FAIL, and the
    # reason says what would decide it.  On the fetched sets (300 prompts, 109 labelled
    # refusals) the same control PASSes (tests/harness/stats/test_judged.py).
    echo = _decide("overrefusal_rate", ComplyEchoSubject(), judge, refusal)
    assert echo.verdict is Verdict.INCONCLUSIVE
    assert "sensitivity lower bound is ≥" in echo.reason
