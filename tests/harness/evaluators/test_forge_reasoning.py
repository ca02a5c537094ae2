"""forge_reasoning evaluator: outcomes per gate, and the verdicts the YAML gives on them.

A synthetic run record stands in for the trained one: the theater control (own thought
identical to its shuffle and its filler on every item) must FAIL the comparisons, a
model whose own thoughts explain the answer better must PASS them, and the w = 0 /
no-thought / no-resize controls must FAIL their gates.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict, decide, guard_machine_load
from harness.evaluators.forge_reasoning import (
    THEATER_CONDITIONS,
    baking_outcomes,
    latency_outcomes,
    leak_outcomes,
    mixing_outcomes,
    roundtrip_outcomes,
    theater_outcomes,
    token_outcomes,
    uplift_outcomes,
)
from harness.machine_load import LoadReading, machine_load_of
from harness.metrics import estimate_metric
from harness.spec import PhaseSpec, load_phase

N = 300
YAML = Path(__file__).resolve().parents[3] / "gates" / "forge_reasoning.yaml"


@pytest.fixture(scope="module")
def phase() -> PhaseSpec:
    return load_phase(YAML)


def _verdict(phase: PhaseSpec, gate_id: str, outcomes: Any, baseline: Any = None) -> Verdict:
    spec = phase.gate(gate_id)
    est = estimate_metric(spec, outcomes, alpha=2 * phase.alpha, baseline=baseline)
    return decide(spec, est, alpha=phase.alpha).verdict


def _arm(own_gain: float, *, constant: bool, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    scores: dict[str, list[dict[str, Any]]] = {c: [] for c in ("own", *THEATER_CONDITIONS, "base")}
    for _ in range(N):
        p = rng.uniform(0.2, 0.6)
        for cond in THEATER_CONDITIONS:
            scores[cond].append({"p_bar": p, "exact": rng.random() < p, "w": 0.4})
        mine = p if constant else min(1.0, p + own_gain + rng.uniform(-0.05, 0.05))
        scores["own"].append({"p_bar": mine, "exact": rng.random() < mine, "w": 0.4})
        scores["base"].append({"p_bar": p, "exact": rng.random() < p - 0.2, "w": 0.0})
    if constant:  # the control's own thought is its own shuffle and its own filler
        scores["shuffled"] = [dict(r) for r in scores["own"]]
        scores["filler"] = [dict(r) for r in scores["own"]]
    baking = [
        {
            "id": f"held_out:{i}",
            "well_formed": not constant,
            "answer_exact": True,
            "trace_exact": False,
        }
        for i in range(N)
    ]
    return {
        "baking": baking,
        "evaluation": {"ids": [f"held_out:{i}" for i in range(N)], "scores": scores},
    }


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    ids = {
        t: 50 + i
        for i, t in enumerate(["[thinking]", "[/endthinking]", *[f"[s{i}]" for i in range(10)]])
    }
    return {
        "tokens": {"vocab_before": 50, "ids": ids},
        "arms": {
            "main": _arm(0.3, constant=False, seed=0),
            "control": _arm(0.0, constant=True, seed=1),
        },
    }


def test_tokens_count_and_roundtrip(phase: PhaseSpec, record: dict[str, Any]) -> None:
    assert _verdict(phase, "special_tokens_added", token_outcomes(record)) is Verdict.PASS
    assert _verdict(phase, "token_roundtrip_failures", roundtrip_outcomes([])) is Verdict.PASS
    bad = roundtrip_outcomes(["input embeddings have 53 rows, tokenizer 65"])
    assert _verdict(phase, "token_roundtrip_failures", bad) is Verdict.FAIL
    record_dup = {"tokens": {"vocab_before": 50, "ids": {"[thinking]": 51, "[/endthinking]": 51}}}
    assert sum(o.value for o in token_outcomes(record_dup)) == 0


def test_theater_passes_for_informative_thoughts(phase: PhaseSpec, record: dict[str, Any]) -> None:
    for cond in THEATER_CONDITIONS:
        assert (
            _verdict(phase, f"theater_vs_{cond}", theater_outcomes(record, "main", cond))
            is Verdict.PASS
        )
    assert _verdict(phase, "theater_mixing_weight", mixing_outcomes(record, "main")) is Verdict.PASS


@pytest.mark.parametrize("cond", ["shuffled", "filler"])
def test_theater_control_fails(phase: PhaseSpec, record: dict[str, Any], cond: str) -> None:
    outcomes = theater_outcomes(record, "control", cond)
    assert all(o.value == 0.0 for o in outcomes)
    assert _verdict(phase, f"theater_vs_{cond}", outcomes) is Verdict.FAIL


def test_w0_and_no_thought_controls_fail(phase: PhaseSpec, record: dict[str, Any]) -> None:
    w0 = mixing_outcomes(record, "main", condition="base")
    assert _verdict(phase, "theater_mixing_weight", w0) is Verdict.FAIL
    cand, base = uplift_outcomes(record, "main", candidate="base")
    assert _verdict(phase, "reasoning_uplift", cand, base) is Verdict.FAIL
    cand, base = uplift_outcomes(record, "main")
    assert [o.item_id for o in cand] == [o.item_id for o in base]


def test_baking_outcomes(phase: PhaseSpec, record: dict[str, Any]) -> None:
    assert _verdict(phase, "baking_convergence", baking_outcomes(record, "main")) is Verdict.PASS
    assert _verdict(phase, "baking_convergence", baking_outcomes(record, "control")) is Verdict.FAIL


def test_latency_outcomes_carry_seconds() -> None:
    rows = [{"id": f"i{i}", "seconds": 0.01 * (i % 7 + 1)} for i in range(80)]
    out = latency_outcomes({"rows": rows})
    assert [o.latency_s for o in out] == [r["seconds"] for r in rows]


def test_slow_answers_on_an_overloaded_machine_are_not_a_fail(phase: PhaseSpec) -> None:
    """Answers over the 0.2 s budget FAIL on a quiet machine; timed at load 20 on 2 CPUs
    (the reading :func:`trainers.quiet_star.latency.measure_latency` attaches), the same
    timing is INCONCLUSIVE: contention, not the model, may have made them slow."""
    rows = [{"id": f"i{i}", "seconds": 0.5 + 0.001 * i} for i in range(80)]
    spec = phase.gate("thought_latency_p95")

    def verdict(load: float) -> Verdict:
        reading = LoadReading(cpus=2, threads=1, loadavg_1min=[load], wall_seconds=40.0)
        out = latency_outcomes({"rows": rows, "machine_load": reading.model_dump(mode="json")})
        assert machine_load_of(out) == reading
        est = estimate_metric(spec, out, alpha=2 * phase.alpha)
        decision = decide(spec, est, alpha=phase.alpha)
        return guard_machine_load(decision, load=machine_load_of(out)).verdict

    assert verdict(1.0) is Verdict.FAIL
    assert verdict(20.0) is Verdict.INCONCLUSIVE


def test_thought_leak_fails_its_gate(phase: PhaseSpec) -> None:
    """One leaking answer out of 100 FAILs ``thought_leaks``; none leaking PASSes."""
    rows = [
        {"id": f"held_out:{i}", "answer": "12", "visible_has_thought_token": False}
        for i in range(100)
    ]
    assert _verdict(phase, "thought_leaks", leak_outcomes({"rows": rows})) is Verdict.PASS
    rows[37] = {"id": "held_out:37", "answer": "[thinking]12", "visible_has_thought_token": True}
    leaks = leak_outcomes({"rows": rows})
    assert sum(o.value for o in leaks) == 1
    assert _verdict(phase, "thought_leaks", leaks) is Verdict.FAIL


def test_report_summarises_step2_from_the_record(record: dict[str, Any]) -> None:
    """The report's Step 2 line reads the update count, slots and the selection curve's
    first and last points from the record (and says so when there were no updates)."""
    from harness.evaluators.forge_reasoning import report_markdown

    main = dict(record["arms"]["main"])
    main["evaluation"] = {**main["evaluation"], "thoughts": {"own": ["[s0] 1", "[s1] 2"]}}
    curve = [
        {"step": 0.0, "selection_accuracy_thought": 0.25, "selection_accuracy_base": 0.125,
         "selection_mixing_weight": 0.58},
        {"step": 2.0, "selection_accuracy_thought": 0.1875, "selection_accuracy_base": 0.0625,
         "selection_mixing_weight": 0.3},
    ]  # fmt: skip
    rec = {
        **record,
        "input": {"source": "embedded"},
        "seconds": {"total_wall": 10.0, "total_cpu": 5.0},
        "arms": {**record["arms"], "main": {**main, "rl": [{"slots": 8}, {"slots": 10}],
                                           "rl_curve": curve}},
    }  # fmt: skip
    text = report_markdown(rec, ["figures/forge_reasoning/rl.png"])
    assert (
        "Step 2: 2 updates, 9.0 thought slots per update; selection accuracy with thought "
        "0.250 → 0.188, without 0.125 → 0.062, mixing weight 0.58 → 0.30." in text
    )
    assert "![figures/forge_reasoning/rl.png](figures/forge_reasoning/rl.png)" in text
    rec["arms"]["main"] = {**main, "rl": [], "rl_curve": []}
    assert "Step 2: no updates recorded." in report_markdown(rec, [])
