"""Circuit-breaker phase gates (gates/circuit_breaker.yaml) on the embedded default run.

Gate 1 and Gate 2 are decided on the data and on the circuit-breaker arm's
training log; Gate 3 on every ablation arm.  The vulnerable baseline is also a
*control* for the gates it must fail by construction (it was trained to follow
injections): if it passed them, the gate or the data would be broken.
"""

from __future__ import annotations

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
    raw_rows,
)
from harness.gate import Gate
from trainers.circuit_breaker.coherence import check_coherence, collapse_report
from trainers.circuit_breaker.pipeline import PhaseRun

pytestmark = pytest.mark.phase("circuit_breaker")


def _digests(run: PhaseRun, arm: str) -> dict[str, Any]:
    return {"model_digest": run.model_digests[arm], "data_digest": run.data_digest}


def _data_extra(run: PhaseRun) -> dict[str, Any]:
    return {
        "counts": run.counts,
        "ds_candidates": run.ds_candidates,
        "ds_dropped_not_true_failures": run.ds_dropped,
        "wall_s": run.wall_s,
    }


# ---------------------------------------------------------------- Gate 1: data ready


@pytest.mark.gate("ds_count")
def test_ds_count(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        count_outcomes(cb_run, "ds"),
        subject="data",
        data_digest=cb_run.data_digest,
        extra=_data_extra(cb_run),
    )


@pytest.mark.gate("dr_count")
def test_dr_count(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        count_outcomes(cb_run, "dr"),
        subject="data",
        data_digest=cb_run.data_digest,
        extra=_data_extra(cb_run),
    )


@pytest.mark.gate("dr_ds_ratio")
def test_dr_ds_ratio(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        ratio_outcome(cb_run),
        subject="data",
        data_digest=cb_run.data_digest,
        extra=_data_extra(cb_run),
    )


@pytest.mark.gate("adversarial_safe_count")
def test_adversarial_safe_count(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        count_outcomes(cb_run, "adversarial_safe"),
        subject="data",
        data_digest=cb_run.data_digest,
        extra=_data_extra(cb_run),
    )


@pytest.mark.gate("format_compliance")
def test_format_compliance(gate: Gate, cb_run: PhaseRun) -> None:
    outcomes = format_outcomes(cb_run)
    decision = gate.check(
        outcomes,
        subject="data",
        data_digest=cb_run.data_digest,
        raw_outputs=[{"problem": p} for p in cb_run.format_problems],
        extra={"n_audited": cb_run.n_audited, "first_problems": cb_run.format_problems[:3]},
    )
    assert decision.verdict is Verdict.PASS, "\n\n".join(cb_run.format_problems[:3])


# ---------------------------------------------------------------- Gate 2: training stable


@pytest.mark.gate("nonfinite_losses")
def test_nonfinite_losses(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(nonfinite_outcomes(cb_run, "cb"), subject="cb", **_digests(cb_run, "cb"))


@pytest.mark.gate("cos_sim_trend")
def test_cos_sim_trend(gate: Gate, cb_run: PhaseRun) -> None:
    outcomes = cos_trend_outcomes(cb_run, first=50)
    gate.check(
        outcomes,
        subject="cb",
        **_digests(cb_run, "cb"),
        extra={"cos_first": outcomes[0].value, "cos_last": outcomes[-1].value},
    )


@pytest.mark.gate("output_coherence")
def test_output_coherence(gate: Gate, cb_run: PhaseRun) -> None:
    outcomes = incoherent_outcomes(cb_run, "cb")
    report = collapse_report(check_coherence(r["output"]) for r in raw_rows(cb_run, "cb"))
    decision = gate.check(
        outcomes,
        subject="cb",
        **_digests(cb_run, "cb"),
        raw_outputs=raw_rows(cb_run, "cb"),
        extra={"offenders": report},
    )
    assert decision.verdict is Verdict.PASS, report


# ---------------------------------------------------------------- Gate 3: evaluation

ARMS_UNDER_TEST = ("adv_sft", "cb")


@pytest.mark.gate("correct_behavior_rate")
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_correct_behavior_rate(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    gate.check(
        arm_outcomes(cb_run, arm, "correct", kind="attack"),
        subject=arm,
        raw_outputs=raw_rows(cb_run, arm),
        **_digests(cb_run, arm),
    )


@pytest.mark.gate("correct_behavior_rate")
def test_correct_behavior_rate_control_baseline(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        arm_outcomes(cb_run, "baseline", "correct", kind="attack"),
        subject="baseline",
        expect=Verdict.FAIL,
        raw_outputs=raw_rows(cb_run, "baseline"),
        **_digests(cb_run, "baseline"),
    )


@pytest.mark.gate("no_tool_call_rate")
@pytest.mark.parametrize("arm", ("baseline", *ARMS_UNDER_TEST))
def test_no_tool_call_rate(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    gate.check(
        arm_outcomes(cb_run, arm, "no_tool_call", kind="attack"),
        subject=arm,
        **_digests(cb_run, arm),
    )


@pytest.mark.gate("asr_relative_reduction")
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_asr_relative_reduction(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    baseline = arm_outcomes(cb_run, "baseline", "harmful", kind="attack")
    gate.check(
        arm_outcomes(cb_run, arm, "harmful", kind="attack"),
        baseline=baseline,
        subject=arm,
        **_digests(cb_run, arm),
        extra={"baseline_asr": sum(o.value for o in baseline) / len(baseline)},
    )


@pytest.mark.gate("asr_relative_reduction")
def test_asr_relative_reduction_control_baseline(gate: Gate, cb_run: PhaseRun) -> None:
    """The baseline against itself reduces nothing: the gate must FAIL it."""
    baseline = arm_outcomes(cb_run, "baseline", "harmful", kind="attack")
    gate.check(
        baseline,
        baseline=baseline,
        subject="baseline",
        expect=Verdict.FAIL,
        **_digests(cb_run, "baseline"),
    )


@pytest.mark.gate("capability_retention")
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_capability_retention(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    baseline = arm_outcomes(cb_run, "baseline", "correct", kind="benign")
    gate.check(
        arm_outcomes(cb_run, arm, "correct", kind="benign"),
        baseline=baseline,
        subject=arm,
        **_digests(cb_run, arm),
        extra={"baseline_benign_success": sum(o.value for o in baseline) / len(baseline)},
    )


@pytest.mark.gate("coherent_outputs")
@pytest.mark.parametrize("arm", ("baseline", *ARMS_UNDER_TEST))
def test_coherent_outputs(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    report = collapse_report(check_coherence(r["output"]) for r in raw_rows(cb_run, arm))
    gate.check(
        incoherent_outcomes(cb_run, arm),
        subject=arm,
        **_digests(cb_run, arm),
        extra={"offenders": report},
    )


# ---------------------------------------------------------------- ablation


@pytest.mark.gate("ablation_asr_vs_adv_sft")
def test_ablation_asr_vs_adv_sft(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        arm_outcomes(cb_run, "cb", "harmful", kind="attack"),
        baseline=arm_outcomes(cb_run, "adv_sft", "harmful", kind="attack"),
        subject="cb_vs_adv_sft",
        **_digests(cb_run, "cb"),
    )
