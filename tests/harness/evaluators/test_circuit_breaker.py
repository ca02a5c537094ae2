"""The circuit-breaker evaluator maps a PhaseRun to outcomes the gates decide as intended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.circuit_breaker import (
    arm_outcomes,
    cos_trend_outcomes,
    count_outcomes,
    format_outcomes,
    incoherent_outcomes,
    nonfinite_outcomes,
    ratio_outcome,
)
from harness.gate import Gate
from harness.spec import load_phase
from trainers.circuit_breaker.pipeline import PhaseRun

PHASE = load_phase(Path(__file__).parents[3] / "gates" / "circuit_breaker.yaml")


def _row(
    i: int, kind: str, *, correct: bool, harmful: bool, coherent: bool = True
) -> dict[str, Any]:
    return {
        "item_id": f"{kind}-{i}",
        "kind": kind,
        "task": "share_file",
        "template_id": "ignore" if kind == "attack" else None,
        "output": "x",
        "parsed": None,
        "parse_mode": "strict",
        "correct": correct,
        "harmful": harmful,
        "correct_exact": correct,
        "harmful_exact": harmful,
        "no_tool_call": False,
        "coherent": coherent,
        "coherence_reasons": [] if coherent else ["empty output"],
    }


def _run(*, cb_harm_every: int = 0, cos: list[float] | None = None) -> PhaseRun:
    n = 200
    base = [_row(i, "attack", correct=False, harmful=True) for i in range(n)]
    base += [_row(i, "benign", correct=True, harmful=False) for i in range(n)]
    cb = [
        _row(i, "attack", correct=True, harmful=bool(cb_harm_every and i % cb_harm_every != 0))
        for i in range(n)
    ]
    cb += [_row(i, "benign", correct=True, harmful=False) for i in range(n)]
    cos = cos if cos is not None else [0.99 - 0.01 * i for i in range(60)]
    log = [
        {"step": i, "rr/cos_sim_mean": c, "loss/rr": c, "loss/total": 1.0}
        for i, c in enumerate(cos)
    ]
    return PhaseRun(
        config_digest="c",
        counts={
            "ds": 900,
            "dr": 4200,
            "adversarial_safe": 800,
            "benign": 3400,
            "eval_attacks": n,
            "eval_benign": n,
        },
        format_problems=[],
        n_audited=10,
        ds_dropped=100,
        ds_candidates=1000,
        model_digests={"baseline": "b", "adv_sft": "a", "cb": "c"},
        data_digest="d",
        train_logs={"cb": log, "adv_sft": []},
        results={"baseline": base, "cb": cb, "adv_sft": base},
        wall_s={},
    )


def _decide(gate_id: str, outcomes: Any, baseline: Any = None) -> Verdict:
    gate = Gate(PHASE, PHASE.gate(gate_id))
    return gate.evaluate(outcomes, baseline=baseline)[1].verdict


def test_data_gates() -> None:
    run = _run()
    assert _decide("ds_count", count_outcomes(run, "ds")) is Verdict.PASS
    assert _decide("dr_count", count_outcomes(run, "dr")) is Verdict.PASS
    assert _decide("dr_ds_ratio", ratio_outcome(run)) is Verdict.PASS
    assert _decide("format_compliance", format_outcomes(run)) is Verdict.PASS
    run.format_problems.append("sample 'x': broken")
    assert _decide("format_compliance", format_outcomes(run)) is Verdict.FAIL
    run.counts["ds"] = 0
    assert _decide("dr_ds_ratio", ratio_outcome(run)) is Verdict.FAIL


def test_stability_gates() -> None:
    assert _decide("cos_sim_trend", cos_trend_outcomes(_run())) is Verdict.PASS
    flat_up = [0.5 + 0.001 * i for i in range(60)]
    assert _decide("cos_sim_trend", cos_trend_outcomes(_run(cos=flat_up))) is Verdict.FAIL
    assert _decide("nonfinite_losses", nonfinite_outcomes(_run())) is Verdict.PASS
    bad = _run()
    bad.train_logs["cb"][3]["loss/rr"] = "nan"
    assert _decide("nonfinite_losses", nonfinite_outcomes(bad)) is Verdict.FAIL
    run = _run()
    run.results["cb"][0] = _row(0, "attack", correct=False, harmful=False, coherent=False)
    assert _decide("output_coherence", incoherent_outcomes(run, "cb")) is Verdict.FAIL


@pytest.mark.parametrize(("harm_every", "verdict"), [(0, Verdict.PASS), (4, Verdict.FAIL)])
def test_asr_reduction_is_paired_against_the_baseline(harm_every: int, verdict: Verdict) -> None:
    run = _run(cb_harm_every=harm_every)
    base = arm_outcomes(run, "baseline", "harmful", kind="attack")
    got = _decide("asr_relative_reduction", arm_outcomes(run, "cb", "harmful", kind="attack"), base)
    assert got is verdict


def test_capability_and_correct_behaviour() -> None:
    run = _run()
    base = arm_outcomes(run, "baseline", "correct", kind="benign")
    assert (
        _decide("capability_retention", arm_outcomes(run, "cb", "correct", kind="benign"), base)
        is Verdict.PASS
    )
    assert (
        _decide("correct_behavior_rate", arm_outcomes(run, "cb", "correct", kind="attack"))
        is Verdict.PASS
    )
    assert (
        _decide("correct_behavior_rate", arm_outcomes(run, "baseline", "correct", kind="attack"))
        is Verdict.FAIL
    )
