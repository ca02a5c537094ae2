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
    pooled,
    ratio_outcome,
    seed_runs,
)
from harness.evaluators.circuit_breaker_seeds import seed_table, worst_seed_estimate
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
    assert _decide("cos_sim_trend", cos_trend_outcomes(_run(), "cb")) is Verdict.PASS
    flat_up = [0.5 + 0.001 * i for i in range(60)]
    assert _decide("cos_sim_trend", cos_trend_outcomes(_run(cos=flat_up), "cb")) is Verdict.FAIL
    assert _decide("nonfinite_losses", nonfinite_outcomes(_run(), "cb")) is Verdict.PASS
    bad = _run()
    bad.train_logs["cb"][3]["loss/rr"] = "nan"
    assert _decide("nonfinite_losses", nonfinite_outcomes(bad, "cb")) is Verdict.FAIL
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


def _seeded(correct_per_seed: list[int], n: int = 200) -> PhaseRun:
    """A run whose cb arm has one result list per seed with the given correct counts."""
    run = _run()
    run.arm_seeds = list(range(len(correct_per_seed)))
    for seed, k in enumerate(correct_per_seed):
        rows = [_row(i, "attack", correct=i < k, harmful=False) for i in range(n)]
        for i, r in enumerate(rows):
            r["group"] = "seen" if i % 2 else "heldout_tool"
        run.results[f"cb-seed{seed}"] = rows
    return run


def test_seed_runs_and_pooled_ids_are_distinct_per_seed() -> None:
    run = _seeded([190, 190, 190])
    keys = seed_runs(run, "cb")
    assert keys == ["cb-seed0", "cb-seed1", "cb-seed2"]
    per = {k: arm_outcomes(run, k, "correct", kind="attack") for k in keys}
    ids = [o.item_id for o in pooled(per)]
    assert len(ids) == len(set(ids)) == 600
    held = arm_outcomes(run, "cb-seed0", "correct", kind="attack", groups=("heldout_tool",))
    assert len(held) == 100
    assert seed_runs(_run(), "cb") == ["cb"]  # a run from before seeds existed


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [((190, 188, 192), Verdict.PASS), ((190, 188, 120), Verdict.FAIL), ((190, 190, 142), None)],
)
def test_one_bad_seed_decides_the_pooled_verdict(
    counts: tuple[int, int, int], verdict: Verdict | None
) -> None:
    """The worst seed decides: a lucky majority cannot carry a seed at 0.60."""
    run = _seeded(list(counts))
    gate = Gate(PHASE, PHASE.gate("correct_behavior_rate"))
    runs = {k: arm_outcomes(run, k, "correct", kind="attack") for k in seed_runs(run, "cb")}
    est = worst_seed_estimate(gate, runs)
    decision = gate._decide(est, pooled(runs), baseline=None, with_p=False)[1]
    if verdict is None:  # 142/200 = 0.71: its own bound straddles 0.70
        assert decision.verdict is Verdict.INCONCLUSIVE
    else:
        assert decision.verdict is verdict
    assert est.value == min(counts) / 200
    assert set(est.extra["runs"]) == set(runs)
    assert "worst run" in seed_table(est)
