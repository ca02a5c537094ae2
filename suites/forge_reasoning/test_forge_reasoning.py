"""forge_reasoning gates (gates/forge_reasoning.yaml) on the cached Quiet-STaR run.

Subjects: ``quiet-star`` (the main arm).  Pipeline controls that must FAIL:
``no-resize`` (thought tokens added without resizing the embeddings), ``filler-baked``
(the theater control: a model baked and trained with thoughts that are the same filler
for every problem — no information; it must FAIL the anti-theater comparisons against
shuffled and filler thoughts, where its own thoughts are its ablations).  Decision-rule
controls, which FAIL by construction whatever the model does (they test the decision
rule, not the pipeline; docs/gates.md): ``w0`` (the same model with mixing weight 0 —
ignored thoughts) and ``no-thought`` (base against base: no uplift).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.forge_reasoning import (
    baking_outcomes,
    latency_outcomes,
    leak_outcomes,
    mixing_outcomes,
    report_markdown,
    roundtrip_outcomes,
    theater_outcomes,
    token_outcomes,
    uplift_outcomes,
)
from harness.gate import Gate
from trainers.quiet_star.pipeline import QuietStarRun

pytestmark = [pytest.mark.phase("forge_reasoning"), pytest.mark.xdist_group("forge_reasoning")]

SUBJECT = "quiet-star"


def _digests(run: QuietStarRun, arm: str = "main") -> dict[str, Any]:
    return {
        "model_digest": run.record["arms"][arm]["model_digest"],
        "data_digest": run.record["cache"]["key"],
    }


def _figures(gate: Gate, run: QuietStarRun) -> list[str]:
    """Reward, mixing-weight and accuracy curves beside the evidence."""
    if gate.options.evidence_dir is None:
        return []
    from harness.report.layer_plots import plot_training_curves

    root = Path(gate.options.evidence_dir)
    arm = run.record["arms"]["main"]
    rl = [{"step": i, **row} for i, row in enumerate(arm["rl"])]
    rel = ["figures/forge_reasoning/rl.png", "figures/forge_reasoning/accuracy.png"]
    keys = (
        "reward_best_minus_worst", "reward_best_minus_worst_answer", "mixing_weight",
        "mixing_weight_answer", "nll_answer",
    )  # fmt: skip
    plot_training_curves(
        rl, root / rel[0], keys=keys,
        title="Quiet-STaR Step 2 per update (all slots / answer-time slot)",
    )  # fmt: skip
    plot_training_curves(
        arm["rl_curve"], root / rel[1],
        keys=("selection_accuracy_thought", "selection_accuracy_base", "selection_mixing_weight"),
        title="selection split during step 2: accuracy with / without thought, mixing weight",
    )  # fmt: skip
    return rel


def _common(run: QuietStarRun) -> dict[str, Any]:
    rec = run.record
    return {
        "input": rec["input"],
        "seconds": rec["seconds"],
        "arm_seconds": {a: rec["arms"][a]["seconds"] for a in rec["arms"]},
        "wandb": rec["tracking"],
    }


@pytest.mark.gate("special_tokens_added")
def test_special_tokens_added(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    gate.check(
        token_outcomes(quiet_star_run.record),
        subject=SUBJECT,
        extra={"tokens": quiet_star_run.record["tokens"], **_common(quiet_star_run)},
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("token_roundtrip_failures")
def test_token_roundtrip(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    tokens = quiet_star_run.record["tokens"]
    gate.check(
        roundtrip_outcomes(tokens["roundtrip_failures"]),
        subject=SUBJECT,
        # which [thinking] init the check verified: "---" pieces, or the vocabulary mean
        extra={k: tokens.get(k) for k in ("start_init", "start_init_pieces")},
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("token_roundtrip_failures")
def test_token_roundtrip_control_no_resize(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    gate.check(
        roundtrip_outcomes(quiet_star_run.record["tokens_control"]["roundtrip_failures"]),
        subject="no-resize",
        expect=Verdict.FAIL,
    )


@pytest.mark.gate("baking_convergence")
def test_baking_convergence(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    arm = quiet_star_run.record["arms"]["main"]
    rows = arm["baking"]
    gate.check(
        baking_outcomes(quiet_star_run.record, "main"),
        subject=SUBJECT,
        extra={
            "trace_exact_share": sum(r["trace_exact"] for r in rows) / len(rows),
            "well_formed_share": sum(r["well_formed"] for r in rows) / len(rows),
            "bake_loss_last": arm["bake_loss"],
        },
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("baking_convergence")
def test_baking_convergence_control_filler(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    gate.check(
        baking_outcomes(quiet_star_run.record, "control"),
        subject="filler-baked",
        expect=Verdict.FAIL,
        **_digests(quiet_star_run, "control"),
    )


@pytest.mark.gate("reasoning_uplift")
def test_reasoning_uplift(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    cand, base = uplift_outcomes(quiet_star_run.record, "main")
    gate.check(
        cand,
        baseline=base,
        subject=SUBJECT,
        extra={
            **_common(quiet_star_run),
            "report_markdown": report_markdown(
                quiet_star_run.record, _figures(gate, quiet_star_run)
            ),
        },
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("reasoning_uplift")
def test_reasoning_uplift_control_no_thought(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    """Decision-rule control: the base scores against themselves (FAILs by construction)."""
    cand, base = uplift_outcomes(quiet_star_run.record, "main", candidate="base")
    gate.check(cand, baseline=base, subject="no-thought", expect=Verdict.FAIL)


def _theater_extra(run: QuietStarRun, condition: str) -> dict[str, Any]:
    """The theater control's numbers on this comparison, for the reader (not decided)."""
    ctrl = theater_outcomes(run.record, "control", condition)
    return {
        "control_filler_baked_mean_difference": sum(o.value for o in ctrl) / len(ctrl),
        "example_thoughts": run.record["arms"]["main"]["evaluation"]["thoughts"][condition][:3],
        "anti_theater": "PASS only if theater_vs_random, _shuffled, _filler, _none and "
        "theater_mixing_weight all PASS (intersection-union, level alpha)",
    }


def _condition(gate: Gate) -> str:
    """``theater_vs_<condition>`` → the ablation condition it compares against."""
    return gate.id.removeprefix("theater_vs_")


@pytest.mark.gate(
    "theater_vs_random", "theater_vs_shuffled", "theater_vs_filler", "theater_vs_none"
)
def test_theater(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    """Own thoughts against one ablation per gate: p̄(own) − p̄(condition), paired by item."""
    condition = _condition(gate)
    gate.check(
        theater_outcomes(quiet_star_run.record, "main", condition),
        subject=SUBJECT,
        extra=_theater_extra(quiet_star_run, condition),
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("theater_vs_shuffled", "theater_vs_filler")
def test_theater_control_filler_baked(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    """The no-information control: its own thoughts are the same for every item, so they
    are their own shuffle and their own filler."""
    gate.check(
        theater_outcomes(quiet_star_run.record, "control", _condition(gate)),
        subject="filler-baked",
        expect=Verdict.FAIL,
        **_digests(quiet_star_run, "control"),
    )


@pytest.mark.gate("theater_mixing_weight")
def test_theater_mixing_weight(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    ctrl = mixing_outcomes(quiet_star_run.record, "control")
    gate.check(
        mixing_outcomes(quiet_star_run.record, "main"),
        subject=SUBJECT,
        extra={"control_filler_baked_mean_w": sum(o.value for o in ctrl) / len(ctrl)},
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("theater_mixing_weight")
def test_theater_mixing_weight_control_w0(gate: Gate, quiet_star_run: QuietStarRun) -> None:
    """Decision-rule control: mixing weight 0 is written, not measured (FAILs by construction)."""
    gate.check(
        mixing_outcomes(quiet_star_run.record, "main", condition="base"),
        subject="w0",
        expect=Verdict.FAIL,
    )


@pytest.mark.gate("thought_latency_p95")
def test_thought_latency_p95(
    gate: Gate, latency_timing: dict[str, Any], quiet_star_run: QuietStarRun
) -> None:
    rows = latency_timing["rows"]
    gate.check(
        latency_outcomes(latency_timing),
        subject=SUBJECT,
        extra={
            "loadavg": latency_timing["loadavg"],
            "threads": latency_timing["threads"],
            "visible_accuracy": sum(r["correct"] for r in rows) / len(rows),
            "mean_thought_tokens": sum(r["thought_tokens"] for r in rows) / len(rows),
            "cpu_seconds_p95": sorted(r["cpu_seconds"] for r in rows)[int(0.95 * len(rows)) - 1],
        },
        **_digests(quiet_star_run),
    )


@pytest.mark.gate("thought_leaks")
def test_thought_leaks(
    gate: Gate, latency_timing: dict[str, Any], quiet_star_run: QuietStarRun
) -> None:
    """Thought tokens in user-visible answers: a gate of its own (exact count, must be 0)."""
    gate.check(leak_outcomes(latency_timing), subject=SUBJECT, **_digests(quiet_star_run))
