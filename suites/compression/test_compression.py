"""Compression phase gates (gates/compression.yaml) on the embedded default run.

The BitNet artifact is the subject — of ``--model``'s checkpoint, the forge
champion, or the embedded tiny model (``compression_input``; the evidence says
which and why); two controls prove each gate can fail: the
do-nothing compressor (``identity``: the fp32 checkpoint itself — ratio 1, no
ternary weights, fp32 decode against fp32 decode) and the zeroing compressor
(``zeroed``: every ternary code 0 — tiny and sparse, but it knows nothing).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.compression import (
    accuracy_outcomes,
    layers_markdown,
    ratio_outcome,
    raw_rows,
    size_extra,
    sparsity_outcome,
    speed_markdown,
    speedup_extra,
    speedup_outcomes,
)
from harness.gate import Gate
from trainers.bitnet.inputs import MIN_FP_ACCURACY
from trainers.bitnet.pipeline import CompressionRun

pytestmark = [pytest.mark.phase("compression"), pytest.mark.xdist_group("compression")]


def _digests(run: CompressionRun, subject: str) -> dict[str, Any]:
    return {"model_digest": run.model_digests[subject], "data_digest": run.data_digest}


def _figures(gate: Gate, run: CompressionRun) -> list[str]:
    """Per-layer and training-curve PNGs beside the evidence (links relative to the report)."""
    if gate.options.evidence_dir is None:
        return []
    from harness.report.layer_plots import plot_layer_stats, plot_training_curves

    root = Path(gate.options.evidence_dir)
    rel = ["figures/compression/layers.png", "figures/compression/training.png"]
    plot_layer_stats(run.layers, root / rel[0], title="BitNet layers: sparsity, scale, cosine")
    plot_training_curves(run.log, root / rel[1], title="BitNet QAT: loss and dev accuracy")
    return rel


@pytest.mark.gate("compression_ratio")
def test_compression_ratio(gate: Gate, compression_run: CompressionRun) -> None:
    gate.check(
        ratio_outcome(compression_run, "packed"),
        subject="bitnet",
        extra={**size_extra(compression_run, "packed"), "input": compression_run.input},
        **_digests(compression_run, "packed"),
    )


@pytest.mark.gate("compression_ratio")
def test_compression_ratio_control_identity(gate: Gate, compression_run: CompressionRun) -> None:
    gate.check(
        ratio_outcome(compression_run, "identity"),
        subject="identity",
        expect=Verdict.FAIL,
        extra=size_extra(compression_run, "identity"),
        **_digests(compression_run, "identity"),
    )


def _no_claim_if_weak(gate: Gate, run: CompressionRun, subject: str) -> float:
    """The fp32 test accuracy; below MIN_FP_ACCURACY the retention gate claims nothing."""
    base = run.correct["fp32"]
    fp_acc = sum(base) / len(base)
    if fp_acc < MIN_FP_ACCURACY:
        gate.no_claim(
            f"full-precision test accuracy {fp_acc:.3f} < {MIN_FP_ACCURACY} on task "
            f"{run.task.get('name')!r}: a retention ratio of a mostly-wrong model says nothing "
            "about compression, so no verdict is claimed; use a task the model solves "
            "(--compression-task)",
            subject=subject,
        )
    return fp_acc


@pytest.mark.gate("accuracy_retention")
def test_accuracy_retention(gate: Gate, compression_run: CompressionRun) -> None:
    run = compression_run
    base = accuracy_outcomes(run, "fp32")
    cand = accuracy_outcomes(run, "bitnet")
    fp_acc = _no_claim_if_weak(gate, run, "bitnet")
    gate.check(
        cand,
        baseline=base,
        subject="bitnet",
        raw_outputs=raw_rows(run, "bitnet"),
        extra={
            "input": run.input,
            "task": run.task,
            "fp32_accuracy": fp_acc,
            "bitnet_accuracy": sum(o.value for o in cand) / len(cand),
            "fp32_dev_accuracy": run.fp_dev_metric,
            "bitnet_dev_accuracy": run.final_dev_metric,
            "stages": run.stages,
            "sensitivity": run.sensitivity,
            "ternary_layers": [x["name"] for x in run.layers if x["ternary"]],
            "fallback_layers": [x["name"] for x in run.layers if not x["ternary"]],
            "layers": run.layers,
            "wall_s": run.wall_s,
            "wandb": run.tracking,
            "report_markdown": layers_markdown(run, _figures(gate, run)),
        },
        **_digests(run, "packed"),
    )


@pytest.mark.gate("accuracy_retention")
def test_accuracy_retention_control_zeroed(gate: Gate, compression_run: CompressionRun) -> None:
    _no_claim_if_weak(gate, compression_run, "zeroed")
    gate.check(
        accuracy_outcomes(compression_run, "zeroed"),
        baseline=accuracy_outcomes(compression_run, "fp32"),
        subject="zeroed",
        expect=Verdict.FAIL,
        **_digests(compression_run, "zeroed"),
    )


@pytest.mark.gate("sparsity")
def test_sparsity(gate: Gate, compression_run: CompressionRun) -> None:
    gate.check(
        sparsity_outcome(compression_run, "bitnet"),
        subject="bitnet",
        extra={
            "per_layer": {x["name"]: x["sparsity"] for x in compression_run.layers},
            "input": compression_run.input,
        },
        **_digests(compression_run, "packed"),
    )


@pytest.mark.gate("sparsity")
def test_sparsity_control_identity(gate: Gate, compression_run: CompressionRun) -> None:
    gate.check(
        sparsity_outcome(compression_run, "identity"),
        subject="identity",
        expect=Verdict.FAIL,
        **_digests(compression_run, "identity"),
    )


def _speed_extra(gate: Gate, outcomes: list[Any], speed: dict[str, Any]) -> dict[str, Any]:
    tiny = speedup_outcomes(speed, "ternary", model="tiny")
    est = gate.evaluate(outcomes)[0].to_dict()
    return {
        "speedup_exp_estimate_and_bounds": speedup_extra(est),
        "per_prompt_speedup": [o.raw["speedup"] for o in outcomes],
        "decided_on": speed["wide"]["label"],
        "wide_shape": speed["wide"]["shape"],
        "wide_fp32_weight_bytes": speed["wide"]["fp32_weight_bytes"],
        "bandwidth_GBps": speed["bandwidth_GBps"],
        "summary": speed["wide"]["summary"],
        "tiny_summary": speed["tiny"]["summary"],
        "tiny_label": speed["tiny"]["label"],
        "tiny_speedup_geometric_mean": math.exp(sum(o.value for o in tiny) / len(tiny)),
        "machine": speed["machine"],
        "machine_load": speed["wide"].get("machine_load"),
        "measured_at": speed["measured_at"],
        "prompt_plan": speed.get("prompt_plan"),
        "report_markdown": _speedup_sentence(speedup_extra(est))
        + _plan_sentence(speed.get("prompt_plan"))
        + speed_markdown(speed),
    }


def _plan_sentence(plan: dict[str, Any] | None) -> str:
    """How many prompts were judged and why (planned from the pilot, never the judged timings)."""
    if not plan:
        return ""
    capped = " — capped: the pilot sits too close to ln 2 to plan a decisive n" * plan["capped"]
    return (
        f"Judged on **{plan['n']} prompts**, planned from a {len(plan['pilot'])}-prompt pilot "
        f"on a separately seeded model (pilot mean ln speedup {plan['pilot_mean']:.3f}, sd "
        f"{plan['pilot_sd']:.3f}, planning sd {plan['planning_sd']:.3f}; power "
        f"{plan['power_at_n']:.2f} at n{capped}).\n\n"
    )


def _speedup_sentence(exp: dict[str, float]) -> str:
    """The gate decides on ln(speedup); say the speedup itself, so nobody has to exp()."""
    return (
        f"Geometric-mean decode speedup of the packed model over fp32: **{exp['value']:.2f}×** "
        f"(bounds [{exp['lo']:.2f}×, {exp['hi']:.2f}×]); the gate row shows their natural logs "
        "against ln 2 = 0.693 (2×) and ln 2.6 = 0.956 (stretch).\n\n"
    )


@pytest.mark.gate("decode_speedup")
def test_decode_speedup(gate: Gate, speed_result: dict[str, Any]) -> None:
    outcomes = speedup_outcomes(speed_result, "ternary")
    gate.check(outcomes, subject="bitnet-wide", extra=_speed_extra(gate, outcomes, speed_result))


@pytest.mark.gate("decode_speedup")
def test_decode_speedup_control_identity(gate: Gate, speed_result: dict[str, Any]) -> None:
    """fp32 against itself (a second interleaved fp32 arm): no speedup, the gate must FAIL."""
    # no load guard: both arms run the same fp32 code, so contention favours neither and
    # this FAIL stays a FAIL on a busy machine (the reading is still in the evidence)
    outcomes = speedup_outcomes(speed_result, "fp32_repeat", load_guard=False)
    gate.check(
        outcomes,
        subject="identity-wide",
        expect=Verdict.FAIL,
        extra={
            "per_prompt_speedup": [o.raw["speedup"] for o in outcomes],
            "machine_load": speed_result["wide"].get("machine_load"),
        },
    )
