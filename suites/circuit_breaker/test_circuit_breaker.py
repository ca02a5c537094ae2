"""Circuit-breaker phase gates (gates/circuit_breaker.yaml) on the embedded default run.

Gate 1 is decided on the data, Gate 2 on the circuit-breaker arm's training logs,
Gate 3 on both trained arms.  Each trained arm has one run per seed: one decision
per (gate, arm) covers all of them — the worst run's bounds for gates with
sampling error (harness.evaluators.circuit_breaker_seeds), the pooled sum for exact
counts — with every run's numbers in the evidence.  The vulnerable baseline is
also a *control* for the gates it must fail by construction (it was trained to
follow injections): if it passed them, the gate or the data would be broken.  The
ablation is decided on the held-out injection-template families only.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.circuit_breaker import (
    HELDOUT_FAMILY_GROUPS,
    arm_outcomes,
    cos_trend_outcomes,
    count_outcomes,
    format_outcomes,
    group_table,
    incoherent_outcomes,
    nonfinite_outcomes,
    pooled,
    ratio_outcome,
    raw_rows,
    seed_runs,
)
from harness.evaluators.circuit_breaker_seeds import seed_table, worst_seed_estimate
from harness.gate import Gate
from harness.outcomes import Outcome
from trainers.circuit_breaker.coherence import check_coherence, collapse_report
from trainers.circuit_breaker.pipeline import PhaseRun

# one xdist worker owns the phase under ``harness run`` (--dist loadgroup), as for the other
# trained phases: the other worker is free for other phases while the run trains, and the
# linked W&B eval run (conftest) holds every gate of the phase
pytestmark = [pytest.mark.phase("circuit_breaker"), pytest.mark.xdist_group("circuit_breaker")]


def _digests(run: PhaseRun, arm: str) -> dict[str, Any]:
    """Digests of one run, or of every seeded run of an arm (joined in seed order)."""
    keys = seed_runs(run, arm)
    return {
        "model_digest": ",".join(run.model_digests[k] for k in keys),
        "data_digest": run.data_digest,
    }


def _per_run(run: PhaseRun, arm: str, fn: Any, *args: Any, **kw: Any) -> dict[str, list[Outcome]]:
    return {key: fn(run, key, *args, **kw) for key in seed_runs(run, arm)}


def _check_worst_seed(
    gate: Gate,
    run: PhaseRun,
    arm: str,
    runs: dict[str, list[Outcome]],
    *,
    baselines: dict[str, list[Outcome]] | None = None,
    extra: dict[str, Any] | None = None,
    subject: str | None = None,
) -> None:
    """One decision over every seed of ``arm``: the worst run's bounds decide."""
    est = worst_seed_estimate(gate, runs, baselines=baselines)
    gate.check(
        pooled(runs),
        subject=subject or arm,
        estimate=est,
        **_digests(run, arm),
        extra={
            **(extra or {}),
            "seeds": run.arm_seeds,
            "per_seed": dict(est.extra["runs"]),
            "report_markdown": f"**{arm}**, one row per seed\n\n"
            + seed_table(est, unit=gate.spec.unit or ""),
        },
    )


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
    per_run = _per_run(cb_run, "cb", nonfinite_outcomes)
    gate.check(
        pooled(per_run),
        subject="cb",
        **_digests(cb_run, "cb"),
        extra={"per_seed": {k: sum(o.value for o in v) for k, v in per_run.items()}},
    )


@pytest.mark.gate("cos_sim_trend")
def test_cos_sim_trend(gate: Gate, cb_run: PhaseRun) -> None:
    per_run = _per_run(cb_run, "cb", cos_trend_outcomes, first=50)
    _check_worst_seed(
        gate,
        cb_run,
        "cb",
        per_run,
        extra={"cos_first_last": {k: (v[0].value, v[-1].value) for k, v in per_run.items()}},
    )


@pytest.mark.gate("cos_sim_trend")
def test_cos_sim_trend_control_flat(gate: Gate) -> None:
    """A cosine that never moves is not "decreasing": its Theil–Sen interval is [0, 0],
    so the gate's threshold sits below 0 and this control must FAIL."""
    flat = [Outcome(item_id=f"flat-step-{i:05d}", value=0.5) for i in range(50)]
    gate.check(flat, subject="flat_curve", expect=Verdict.FAIL)


def _offenders(run: PhaseRun, arm: str) -> dict[str, Any]:
    return {
        key: collapse_report(check_coherence(r["output"]) for r in raw_rows(run, key))
        for key in seed_runs(run, arm)
    }


@pytest.mark.gate("output_coherence")
def test_output_coherence(gate: Gate, cb_run: PhaseRun) -> None:
    outcomes = pooled(_per_run(cb_run, "cb", incoherent_outcomes))
    report = _offenders(cb_run, "cb")
    decision = gate.check(
        outcomes,
        subject="cb",
        **_digests(cb_run, "cb"),
        raw_outputs=[
            {"run": key, **row} for key in seed_runs(cb_run, "cb") for row in raw_rows(cb_run, key)
        ],
        extra={"offenders": report},
    )
    assert decision.verdict is Verdict.PASS, report


# ---------------------------------------------------------------- Gate 3: evaluation

ARMS_UNDER_TEST = ("adv_sft", "cb")


@pytest.mark.gate("correct_behavior_rate")
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_correct_behavior_rate(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    _check_worst_seed(
        gate, cb_run, arm, _per_run(cb_run, arm, arm_outcomes, "correct", kind="attack")
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
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_no_tool_call_rate(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    _check_worst_seed(
        gate, cb_run, arm, _per_run(cb_run, arm, arm_outcomes, "no_tool_call", kind="attack")
    )


@pytest.mark.gate("no_tool_call_rate")
def test_no_tool_call_rate_baseline(gate: Gate, cb_run: PhaseRun) -> None:
    gate.check(
        arm_outcomes(cb_run, "baseline", "no_tool_call", kind="attack"),
        subject="baseline",
        **_digests(cb_run, "baseline"),
    )


@pytest.mark.gate("asr_relative_reduction")
@pytest.mark.parametrize("arm", ARMS_UNDER_TEST)
def test_asr_relative_reduction(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    baseline = arm_outcomes(cb_run, "baseline", "harmful", kind="attack")
    runs = _per_run(cb_run, arm, arm_outcomes, "harmful", kind="attack")
    _check_worst_seed(
        gate,
        cb_run,
        arm,
        runs,
        baselines={k: baseline for k in runs},
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
    runs = _per_run(cb_run, arm, arm_outcomes, "correct", kind="benign")
    _check_worst_seed(
        gate,
        cb_run,
        arm,
        runs,
        baselines={k: baseline for k in runs},
        extra={"baseline_benign_success": sum(o.value for o in baseline) / len(baseline)},
    )


@pytest.mark.gate("coherent_outputs")
@pytest.mark.parametrize("arm", ("baseline", *ARMS_UNDER_TEST))
def test_coherent_outputs(gate: Gate, cb_run: PhaseRun, arm: str) -> None:
    gate.check(
        pooled(_per_run(cb_run, arm, incoherent_outcomes)),
        subject=arm,
        **_digests(cb_run, arm),
        extra={"offenders": _offenders(cb_run, arm)},
    )


# ---------------------------------------------------------------- ablation


@pytest.mark.gate("ablation_asr_vs_adv_sft")
def test_ablation_asr_vs_adv_sft(gate: Gate, cb_run: PhaseRun) -> None:
    """cb vs adv_sft at the same seed, on attacks from template families no split trained on."""
    held = HELDOUT_FAMILY_GROUPS

    def harm(key: str) -> list[Outcome]:
        return arm_outcomes(cb_run, key, "harmful", kind="attack", groups=held)

    pairs = dict(zip(seed_runs(cb_run, "cb"), seed_runs(cb_run, "adv_sft"), strict=True))
    _check_worst_seed(
        gate,
        cb_run,
        "cb",
        {k: harm(k) for k in pairs},
        subject="cb_vs_adv_sft",
        baselines={k: harm(v) for k, v in pairs.items()},
        extra={
            "groups": list(held),
            "paired_with": pairs,
            "by_group_markdown": group_table(cb_run),
        },
    )
