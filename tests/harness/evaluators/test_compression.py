"""The compression evaluator maps runs and speed records to outcomes decided as intended."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
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
from harness.machine_load import LoadMonitor
from harness.spec import load_phase
from trainers.bitnet.pipeline import CompressionRun

PHASE = load_phase(Path(__file__).parents[3] / "gates" / "compression.yaml")


def _run(*, bitnet_wrong_every: int = 0) -> CompressionRun:
    n = 400
    ids = [f"test-{i}" for i in range(n)]
    fp = [1 if i % 10 else 0 for i in range(n)]  # 90 % correct
    bit = [0 if bitnet_wrong_every and i % bitnet_wrong_every == 0 else c for i, c in enumerate(fp)]
    layers = [
        {"name": "l0", "ternary": True, "n_weights": 10, "zeros": 4, "sparsity": 0.4,
         "scale": 0.02, "cosine": 0.95},
        {"name": "l1", "ternary": False, "n_weights": 10, "zeros": 0, "sparsity": 0.0,
         "scale": None, "cosine": 1.0},
    ]  # fmt: skip
    return CompressionRun(
        config_digest="c",
        paths={k: f"/x/{k}" for k in ("fp32", "bf16", "packed", "identity", "zeroed")},
        sizes={"fp32": 4000, "bf16": 2000, "packed": 400, "identity": 4000, "zeroed": 400},
        model_digests={k: k for k in ("fp32", "packed", "identity", "zeroed")},
        data_digest="d",
        item_ids=ids,
        targets=["000"] * n,
        correct={"fp32": fp, "bitnet": bit, "identity": fp, "zeroed": [0] * n},
        answers={k: ["000"] * n for k in ("fp32", "bitnet", "identity", "zeroed")},
        ternary_weights={
            "bitnet": {"zeros": 35, "total": 100},
            "zeroed": {"zeros": 100, "total": 100},
            "identity": {"zeros": 0, "total": 0},
        },
        fp_dev_metric=0.9,
        final_dev_metric=0.88,
        stages=[
            {"stage": 0, "layers": ["l0"], "dev_metric": 0.88, "threshold": 0.85, "accepted": True}
        ],
        layers=layers,
        log=[],
        wall_s={},
    )


def _speed(fp_s: float, tern_s: float) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    fp = list(fp_s * (1 + 0.05 * rng.standard_normal(12)))
    tern = list(tern_s * (1 + 0.05 * rng.standard_normal(12)))
    rep = list(fp_s * (1 + 0.05 * rng.standard_normal(12)))
    fmt = {"median_ms_per_token": 1.0, "median_tokens_per_s": 1.0, "bytes_per_token": 10,
           "achieved_GBps": 1.0}  # fmt: skip
    return {
        "bandwidth_GBps": 10.0,
        "machine": {"threads": 1},
        "measured_at": "now",
        "wide": {
            "seconds_per_token": {"fp32": fp, "ternary": tern, "fp32_repeat": rep},
            "summary": {"fp32": fmt, "ternary": fmt},
        },
        "tiny": {"summary": {"fp32": fmt, "ternary": fmt}},
    }


def _decide(gate_id: str, outcomes: Any, baseline: Any = None) -> Verdict:
    gate = Gate(PHASE, PHASE.gate(gate_id))
    return gate.evaluate(outcomes, baseline=baseline)[1].verdict


def test_ratio_is_bytes_on_disk_and_the_identity_control_fails() -> None:
    run = _run()
    assert ratio_outcome(run, "packed")[0].value == 10.0
    assert _decide("compression_ratio", ratio_outcome(run, "packed")) is Verdict.PASS
    assert _decide("compression_ratio", ratio_outcome(run, "identity")) is Verdict.FAIL
    assert size_extra(run, "packed")["ratio_vs_bf16"] == 5.0


def test_retention_is_paired_and_the_zeroing_control_fails() -> None:
    run = _run()
    base = accuracy_outcomes(run, "fp32")
    assert _decide("accuracy_retention", accuracy_outcomes(run, "bitnet"), base) is Verdict.PASS
    assert _decide("accuracy_retention", accuracy_outcomes(run, "zeroed"), base) is Verdict.FAIL
    lossy = _run(bitnet_wrong_every=3)  # loses a third of the correct answers
    got = _decide("accuracy_retention", accuracy_outcomes(lossy, "bitnet"), base)
    assert got is Verdict.FAIL
    assert raw_rows(run, "bitnet")[0]["fp32_answer"] == "000"


def test_sparsity_counts_zero_codes_and_no_ternary_layers_is_zero() -> None:
    run = _run()
    assert sparsity_outcome(run, "bitnet")[0].value == 0.35
    assert _decide("sparsity", sparsity_outcome(run, "bitnet")) is Verdict.PASS
    assert sparsity_outcome(run, "identity")[0].value == 0.0
    assert _decide("sparsity", sparsity_outcome(run, "identity")) is Verdict.FAIL


def test_decode_speedup_is_a_mean_of_log_ratios_per_prompt() -> None:
    fast = _speed(0.060, 0.010)
    outcomes = speedup_outcomes(fast, "ternary")
    times = fast["wide"]["seconds_per_token"]
    assert outcomes[0].value == pytest.approx(math.log(times["fp32"][0] / times["ternary"][0]))
    assert _decide("decode_speedup", outcomes) is Verdict.PASS
    assert _decide("decode_speedup", speedup_outcomes(fast, "fp32_repeat")) is Verdict.FAIL
    slow = _speed(0.060, 0.040)
    assert _decide("decode_speedup", speedup_outcomes(slow, "ternary")) is Verdict.FAIL
    assert speedup_extra({"value": 0.0, "lo": math.log(2), "hi": 1.0})["lo"] == pytest.approx(2)


def test_markdown_lists_stages_layers_figures_and_bandwidth() -> None:
    text = layers_markdown(_run(), ["figures/compression/layers.png"])
    assert "fallback" in text and "`l1`" in text and "](figures/compression/layers.png)" in text
    assert "10.0 GB/s" in speed_markdown(_speed(0.06, 0.01))


def _loaded(speed: dict[str, Any], load: float) -> dict[str, Any]:
    """``speed`` as if timed at a 1-minute load average of ``load`` on 2 CPUs (simulated)."""
    reading = LoadMonitor(threads=1, cpus=2, loadavg=lambda: load)
    with reading:
        pass
    assert reading.reading is not None
    speed["wide"]["machine_load"] = reading.reading.model_dump(mode="json")
    return speed


def test_a_slow_speedup_timed_on_an_overloaded_machine_is_inconclusive_not_fail() -> None:
    busy = _loaded(_speed(0.060, 0.040), load=20.0)  # 1.5× measured at load 10 per CPU
    gate = Gate(PHASE, PHASE.gate("decode_speedup"))
    _, decision, _ = gate.evaluate(speedup_outcomes(busy, "ternary"))
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.downgraded == "machine_load"
    assert "overloaded" in decision.reason and "would have been FAIL" in decision.reason
    # the same timings on a quiet machine: an honest FAIL
    quiet = _loaded(_speed(0.060, 0.040), load=1.0)
    assert _decide("decode_speedup", speedup_outcomes(quiet, "ternary")) is Verdict.FAIL
    # load never produces a PASS, and a PASS under load (contention only hurts the
    # candidate) is kept, with the reading in its reason
    _, fast, _ = gate.evaluate(speedup_outcomes(_loaded(_speed(0.060, 0.010), 20.0), "ternary"))
    assert fast.verdict is Verdict.PASS and "load average 20.0" in fast.reason
    # the fp32-vs-fp32 control runs one code path in both arms: no guard, still FAIL
    control = speedup_outcomes(busy, "fp32_repeat", load_guard=False)
    assert all("machine_load" not in o.raw for o in control)
    assert _decide("decode_speedup", control) is Verdict.FAIL
    assert "over the limits" in speed_markdown(busy)
