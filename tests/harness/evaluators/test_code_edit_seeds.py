"""Worst-seed decisions on the code-edit SRL gates (gates/code_edit.yaml): one lucky seed
cannot carry a PASS, on the paired success gates and on the reward trend.

The suite decides ``srl_vs_sft_success`` / ``srl_vs_continued_sft_success`` /
``reward_trend`` through :func:`worst_seed_estimate` over per-seed outcome lists; these
synthetic lists show the rule on the phase's own gate specs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.decision import Verdict
from harness.evaluators.circuit_breaker_seeds import worst_seed_estimate
from harness.evaluators.code_edit_models import curve_outcomes, pooled_runs
from harness.gate import Gate
from harness.outcomes import Outcome
from harness.spec import load_phase

PHASE = load_phase(Path(__file__).parents[3] / "gates" / "code_edit.yaml")
N = 106  # the embedded set's held-out action rows


def _success(hits: int) -> list[Outcome]:
    """``hits`` successes on the first rows, then failures (same item ids for every run)."""
    return [Outcome(item_id=f"r{i:03d}", value=float(i < hits)) for i in range(N)]


def _verdict(gate_id: str, runs: dict[str, list[Outcome]], base: list[Outcome] | None) -> Verdict:
    gate = Gate(PHASE, PHASE.gate(gate_id))
    baselines = None if base is None else dict.fromkeys(runs, base)
    est = worst_seed_estimate(gate, runs, baselines=baselines)
    assert set(est.extra["runs"]) == set(runs) and est.extra["k"] == len(runs)
    return gate._decide(est, pooled_runs(runs), baseline=None, with_p=False)[1].verdict


@pytest.mark.parametrize("gate_id", ["srl_vs_sft_success", "srl_vs_continued_sft_success"])
@pytest.mark.parametrize(
    ("hits", "verdict"),
    [
        ((25, 25, 25), Verdict.PASS),  # every seed clears: +0.21 each
        ((106, 2), Verdict.INCONCLUSIVE),  # one lucky seed beside one that did nothing
        ((25, 2, 25), Verdict.INCONCLUSIVE),  # a majority of good seeds cannot carry it
        ((25, 0), None),  # a seed below the baseline: its α/k bound decides
    ],
)
def test_worst_paired_seed_decides(
    gate_id: str, hits: tuple[int, ...], verdict: Verdict | None
) -> None:
    base = _success(2)  # Stage 1's measured 2/106
    runs = {f"srl_seed{i}": _success(h) for i, h in enumerate(hits)}
    got = _verdict(gate_id, runs, base)
    if verdict is None:  # 0 vs 2 of 106: −0.019, its α/2 upper bound stays above 0
        assert got is Verdict.INCONCLUSIVE
    else:
        assert got is verdict
    lucky_alone = _verdict(gate_id, {"lucky": _success(106)}, base)
    assert lucky_alone is Verdict.PASS  # the lucky seed on its own would PASS


def test_a_seed_clearly_below_the_baseline_fails() -> None:
    base = _success(30)
    runs = {"srl_seed0": _success(60), "srl_seed1": _success(5)}
    assert _verdict("srl_vs_sft_success", runs, base) is Verdict.FAIL


def test_reward_trend_one_rising_seed_beside_a_flat_one_fails() -> None:
    rising = curve_outcomes([0.01 * i for i in range(30)], name="rising")
    flat = curve_outcomes([0.5] * 30, name="flat")
    assert _verdict("reward_trend", {"rising": rising}, None) is Verdict.PASS
    assert _verdict("reward_trend", {"rising": rising, "flat": flat}, None) is Verdict.FAIL
    assert _verdict("reward_trend", {"a": rising, "b": rising}, None) is Verdict.PASS


def test_pooled_ids_are_distinct_per_seed() -> None:
    runs = {"s0": _success(3), "s1": _success(4)}
    pooled = pooled_runs(runs)
    assert len({o.item_id for o in pooled}) == 2 * N
    assert sum(o.value for o in pooled) == 7
