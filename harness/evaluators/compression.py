"""Compression phase: turn a ``CompressionRun`` and a speed measurement into Outcomes.

Training, packing and evaluation happen once in
:mod:`trainers.bitnet.pipeline`; decode timing in :mod:`trainers.bitnet.speed_run`.
This module only maps their records to what each gate of
``gates/compression.yaml`` decides on, and renders the per-gate detail tables:

* ``compression_ratio`` — one exact outcome: fp32 checkpoint bytes / artifact bytes;
* ``accuracy_retention`` — per held-out item, 1 if the subject's greedy answer is
  exact (paired with the full-precision model by item id);
* ``sparsity`` — one exact outcome: zero codes / ternary weights;
* ``decode_speedup`` — per prompt, ln(fp32 seconds per token ÷ the format's),
  both timed on that prompt in the same interleaved round.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.machine_load import LoadReading
from harness.outcomes import Outcome
from trainers.bitnet.pipeline import CompressionRun

__all__ = [
    "accuracy_outcomes",
    "layers_markdown",
    "ratio_outcome",
    "raw_rows",
    "size_extra",
    "sparsity_outcome",
    "speed_markdown",
    "speedup_extra",
    "speedup_outcomes",
]


def ratio_outcome(run: CompressionRun, subject: str) -> list[Outcome]:
    """fp32 checkpoint bytes on disk over the ``subject`` artifact's (one exact value)."""
    fp32, own = run.sizes["fp32"], run.sizes[subject]
    return [
        Outcome(
            item_id="bytes_ratio",
            value=fp32 / own,
            raw={"fp32_bytes": fp32, f"{subject}_bytes": own, "path": run.paths[subject]},
        )
    ]


def size_extra(run: CompressionRun, subject: str) -> dict[str, Any]:
    """Sizes on disk, and the ratio against the bf16 checkpoint, for the evidence."""
    own = run.sizes[subject]
    return {
        "bytes": {k: run.sizes[k] for k in ("fp32", "bf16", subject)},
        "ratio_vs_fp32": run.sizes["fp32"] / own,
        "ratio_vs_bf16": run.sizes["bf16"] / own,
        "paths": {k: run.paths[k] for k in ("fp32", "bf16", subject)},
    }


def accuracy_outcomes(run: CompressionRun, subject: str) -> list[Outcome]:
    """Per held-out test item: 1 if ``subject``'s greedy answer equals the target."""
    if subject not in run.correct:
        raise KeyError(f"unknown subject '{subject}'; subjects: {', '.join(run.correct)}")
    return [
        Outcome(item_id=i, value=float(c), raw={"answer": a, "target": t})
        for i, c, a, t in zip(
            run.item_ids, run.correct[subject], run.answers[subject], run.targets, strict=True
        )
    ]


def raw_rows(run: CompressionRun, subject: str) -> list[dict[str, Any]]:
    """Every test answer of ``subject`` beside the full-precision model's (evidence raw file)."""
    return [
        {"item_id": i, "target": t, "answer": a, "fp32_answer": f, "correct": c}
        for i, t, a, f, c in zip(
            run.item_ids,
            run.targets,
            run.answers[subject],
            run.answers["fp32"],
            run.correct[subject],
            strict=True,
        )
    ]


def sparsity_outcome(run: CompressionRun, subject: str) -> list[Outcome]:
    """Zero codes over all ternary weights of ``subject`` (0 when it has none: no vacuous pass)."""
    counts = run.ternary_weights[subject]
    total = counts["total"]
    return [
        Outcome(
            item_id="zero_share",
            value=counts["zeros"] / total if total else 0.0,
            raw=dict(counts),
        )
    ]


def speedup_outcomes(
    speed: Mapping[str, Any],
    fmt: str,
    *,
    baseline: str = "fp32",
    model: str = "wide",
    load_guard: bool = True,
) -> list[Outcome]:
    """Per prompt: ln(``baseline`` s/token ÷ ``fmt`` s/token) of the ``model`` subject.

    The pair is formed here (same prompt, interleaved runs), so the gate is a
    one-sample ``mean`` gate on log speedups: ln 2 ⇔ a geometric-mean 2×.

    ``load_guard`` attaches the run's machine-load reading to every outcome
    (``raw["machine_load"]``), so a FAIL timed on an overloaded machine is decided
    INCONCLUSIVE (:func:`harness.decision.guard_machine_load`): contention slows the
    compute-bound packed kernel more than memory-stalled fp32 (docs/compression.md),
    i.e. it can only make the candidate look worse.  Off for the fp32-vs-fp32
    control: both arms run the same code, contention favours neither, and its FAIL
    must stay a FAIL.
    """
    times: Mapping[str, Sequence[float]] = speed[model]["seconds_per_token"]
    if len(times[fmt]) != len(times[baseline]):
        raise ValueError(f"{fmt} and {baseline} were timed on different numbers of prompts")
    load = speed[model].get("machine_load") if load_guard else None
    extra: dict[str, Any] = {} if load is None else {"machine_load": load}
    return [
        Outcome(
            item_id=f"prompt-{i:02d}",
            value=math.log(b / f),
            raw={
                f"{baseline}_s_per_token": b,
                f"{fmt}_s_per_token": f,
                "speedup": b / f,
                **extra,
            },
        )
        for i, (f, b) in enumerate(zip(times[fmt], times[baseline], strict=True))
    ]


def speedup_extra(estimate: Mapping[str, Any]) -> dict[str, float]:
    """The log-scale estimate and bounds as speedups (exp), for the evidence."""
    return {k: math.exp(float(estimate[k])) for k in ("value", "lo", "hi")}


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def speed_markdown(speed: Mapping[str, Any]) -> str:
    """Per model and format: ms/token, bytes read per token, achieved GB/s vs measured bandwidth."""
    bw = float(speed["bandwidth_GBps"])
    lines = [
        f"Measured read bandwidth: {bw:.1f} GB/s ({speed['machine']['threads']} thread(s), "
        f"{speed['measured_at']}).",
        "",
        _row(["model", "format", "median ms/token", "MB read/token", "GB/s", "% of bandwidth"]),
        _row(["---"] * 6),
    ]
    for model in ("wide", "tiny"):
        for fmt, s in speed[model]["summary"].items():
            gbps = float(s["achieved_GBps"])
            lines.append(
                _row(
                    [
                        model,
                        fmt,
                        f"{s['median_ms_per_token']:.2f}",
                        f"{s['bytes_per_token'] / 1e6:.2f}",
                        f"{gbps:.2f}",
                        f"{100 * gbps / bw:.0f} %",
                    ]
                )
            )
    for model in ("wide", "tiny"):
        load = speed[model].get("machine_load")
        if load is not None:
            reading = LoadReading.model_validate(load)
            why = reading.overloaded()
            lines.append(
                f"\n{model}: timed at {reading.summary()}"
                + (f" — over the limits ({why})." if why else " — within the limits.")
            )
    return "\n".join(lines)


def _short(names: Sequence[str]) -> str:
    return ", ".join(f"`{n.removeprefix('model.')}`" for n in names)


def layers_markdown(run: CompressionRun, figures: Sequence[str] = ()) -> str:
    """Input, stages (layers, dev metric, fallback), per-layer sensitivity / sparsity / cosine."""
    inp = run.input or {}
    lines = [
        f"Input: **{inp.get('kind', 'embedded')}** — {inp.get('reason', 'embedded default')}. "
        f"Task: {run.task.get('name', '?')}.",
        "",
        f"Full-precision dev accuracy {run.fp_dev_metric:.3f}; "
        f"after QAT {run.final_dev_metric:.3f}.  Stages are tried least sensitive layers "
        "first; a stage that misses the threshold is rolled back and bisected down to "
        "single layers, which then stay in high precision.",
        "",
        _row(["stage", "layers", "rounds", "dev metric", "threshold", "result"]),
        _row(["---"] * 6),
    ]
    for s in run.stages:
        result = "ternary" if s["accepted"] else "rolled back"
        if not s["accepted"] and len(s["layers"]) == 1:
            result = "**fallback** (kept in high precision)"
        lines.append(
            _row(
                [
                    s["stage"],
                    _short(s["layers"]),
                    s.get("rounds", 1),
                    f"{s['dev_metric']:.3f}",
                    f"{s['threshold']:.3f}",
                    result,
                ]
            )
        )
    lines += [
        "",
        _row(["layer", "ternary", "sensitivity (KL)", "sparsity", "scale", "output cosine"]),
        _row(["---"] * 6),
    ]
    for layer in run.layers:
        scale = "—" if layer["scale"] is None else f"{layer['scale']:.4g}"
        sens = run.sensitivity.get(layer["name"])
        lines.append(
            _row(
                [
                    f"`{layer['name']}`",
                    "yes" if layer["ternary"] else "no (fallback)",
                    "—" if sens is None else f"{sens:.3g}",
                    f"{layer['sparsity']:.3f}",
                    scale,
                    f"{layer['cosine']:.4f}",
                ]
            )
        )
    lines += ["", *(f"![{f}]({f})" for f in figures)]
    return "\n".join(lines)
