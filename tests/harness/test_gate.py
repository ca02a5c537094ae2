"""Gate: α bookkeeping, verdict → pytest outcome, evidence attachment, sequential monitor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.decision import Verdict
from harness.errors import HarnessError, StatsError
from harness.evidence import EvidenceRecord, Lane
from harness.gate import EVIDENCE_PROPERTY, Gate, GateOptions, InconclusiveMode, family_size
from harness.outcomes import Outcome
from harness.spec import PhaseSpec

PHASE = PhaseSpec.model_validate(
    {
        "phase": "demo",
        "alpha": 0.05,
        "gates": [
            {"id": "rate", "metric": "proportion", "direction": "ge", "tiers": {"primary": 0.5}},
            {"id": "slip", "metric": "proportion", "direction": "le", "tiers": {"primary": 0.01}},
            {"id": "rows", "metric": "count", "direction": "ge", "tiers": {"primary": 3}},
        ],
    }
)


@dataclass
class FakeNode:
    nodeid: str = "suite.py::test_x"
    user_properties: list[tuple[str, object]] = field(default_factory=list)


def outcomes(k: int, n: int) -> list[Outcome]:
    return [Outcome(item_id=f"i{i}", value=1.0 if i < k else 0.0) for i in range(n)]


def make_gate(gate_id: str = "rate", **options: Any) -> tuple[Gate, FakeNode]:
    node = FakeNode()
    return Gate(PHASE, PHASE.gate(gate_id), node=node, options=GateOptions(**options)), node


def test_alpha_is_bonferroni_over_sampled_gates_only() -> None:
    assert family_size(PHASE) == 2  # the exact count gate takes no share of α
    gate, _ = make_gate("rate")
    assert gate.alpha == 0.05 and gate.alpha_decision == pytest.approx(0.025)
    assert make_gate("rows")[0].alpha_decision == 0.05
    single = PhaseSpec.model_validate({**PHASE.model_dump(), "multiplicity": "none"})
    assert family_size(single) == 1


def test_pass_returns_decision_and_attaches_evidence() -> None:
    gate, node = make_gate()
    decision = gate.check(outcomes(80, 100), model_digest="sha256:m")
    assert decision.verdict is Verdict.PASS
    [(name, payload)] = node.user_properties
    assert name == EVIDENCE_PROPERTY
    rec = EvidenceRecord.model_validate_json(str(payload))
    assert rec.nodeid == "suite.py::test_x" and rec.lane is Lane.REAL
    assert rec.estimate["alpha"] == pytest.approx(0.05)  # two-sided 2·α/m
    assert rec.p_value is not None and rec.p_value < 0.025
    assert rec.digests.model == "sha256:m" and rec.raw_output is None  # no evidence dir


def test_evidence_records_the_cache_keys_used() -> None:
    from harness.cachekey import cache_key, note_cache_use

    key = cache_key("demo-artifact", modules=["harness.gate"], config={"x": 1}, seed=7)
    note_cache_use(key, mode="refresh", label="demo")
    gate, node = make_gate()
    gate.check(outcomes(80, 100))
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    entry = rec.extra["caches"][f"demo:{key.short}"]
    assert entry["key"] == key.key and entry["mode"] == "refresh" and entry["seed"] == 7
    assert "harness.gate" in entry["code"]
    assert "training_runs" in rec.extra


def test_fail_fails_the_test_with_the_reason() -> None:
    gate, node = make_gate()
    with pytest.raises(pytest.fail.Exception, match=r"FAIL: rate: 0\.2 .* vs primary ≥ 0\.5"):
        gate.check(outcomes(20, 100))
    # evidence is recorded before failing, and the failure is marked as the verdict's own
    assert [k for k, _ in node.user_properties] == ["gate_evidence", "gate_verdict_failure"]


@pytest.mark.parametrize("mode", list(InconclusiveMode))
def test_inconclusive_modes(mode: InconclusiveMode) -> None:
    gate, _ = make_gate(inconclusive=mode)
    data = outcomes(52, 100)
    if mode is InconclusiveMode.FAIL:
        with pytest.raises(pytest.fail.Exception, match="INCONCLUSIVE"):
            gate.check(data)
    elif mode is InconclusiveMode.XFAIL:
        with pytest.raises(pytest.xfail.Exception, match="INCONCLUSIVE"):
            gate.check(data)
    else:
        assert gate.check(data).verdict is Verdict.INCONCLUSIVE
    assert gate.decisions[-1].n_needed is not None


def test_controls_pass_on_expected_verdict_and_flag_mismatch() -> None:
    gate, node = make_gate()
    decision = gate.check(outcomes(10, 100), subject="mutant", expect="FAIL")
    assert decision.verdict is Verdict.FAIL  # a control that FAILs as expected passes
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    assert rec.lane is Lane.CONTROL and rec.expect is Verdict.FAIL and rec.control_ok
    with pytest.raises(pytest.fail.Exception, match=r"control mismatch.*'oracle' must give PASS"):
        gate.check(outcomes(10, 100), subject="oracle", expect=Verdict.PASS)


def test_raw_outputs_and_outcomes_are_kept(tmp_path: Path) -> None:
    gate, node = make_gate(evidence_dir=tmp_path)
    raw = [{"item_id": f"i{i}", "completion": f"text {i}"} for i in range(100)]
    gate.check(outcomes(90, 100), subject="tiny", raw_outputs=raw, sandbox="docker")
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    assert rec.raw_output == "raw/demo/rate--tiny.jsonl" and rec.sandbox == "docker"
    lines = (tmp_path / rec.raw_output).read_text().splitlines()
    assert json.loads(lines[3]) == raw[3]
    kept = (tmp_path / rec.extra["outcomes_file"]).read_text().splitlines()
    assert json.loads(kept[0])["value"] == 1.0 and len(kept) == 100
    # without custom raw outputs the outcomes themselves are the raw file
    gate.check(outcomes(90, 100), subject="plain")
    assert (tmp_path / "raw/demo/rate--plain.jsonl").read_text().count("\n") == 100


def test_count_gate_is_exact_and_has_no_p_value() -> None:
    gate, node = make_gate("rows")
    gate.check(outcomes(4, 4))
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    assert rec.p_value is None and rec.decision["verdict"] == "PASS"


def test_bad_outcomes_raise_a_stats_error_naming_the_gate() -> None:
    gate, _ = make_gate()
    with pytest.raises(StatsError, match="gate 'rate'"):
        gate.check([Outcome(item_id="x", value=0.5)])


def test_sequential_monitor_disabled_never_stops_early() -> None:
    gate, _ = make_gate(sequential=False)
    monitor = gate.sequential(max_n=50)
    assert not monitor.update([1.0] * 49)
    assert monitor.update(1.0)  # only max_n stops it


def test_sequential_monitor_stops_early_and_decides_on_the_anytime_bound() -> None:
    gate, node = make_gate(sequential=True)
    monitor = gate.sequential(max_n=400)
    rng = np.random.default_rng(1)
    seen: list[Outcome] = []
    while not monitor.stop:
        x = float(rng.random() < 0.9)
        seen.append(Outcome(item_id=f"i{len(seen)}", value=x))
        monitor.update(x)
    assert monitor.n < 400  # a 90 % pass rate against 0.5 is decided long before 400
    decision = gate.check(seen, estimate=monitor.estimate())
    assert decision.verdict is Verdict.PASS
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    assert rec.estimate["method"].startswith("betting confidence sequence")
    assert rec.p_value is None  # fixed-n p-values are invalid after optional stopping
    with pytest.raises(StatsError, match="outside"):
        monitor.update(2.0)


def test_sequential_monitor_keeps_alpha_on_the_threshold() -> None:
    """Monte-Carlo (reduced): true rate exactly at the threshold → false PASS ≤ α/m + MC error."""
    gate, _ = make_gate(sequential=True)
    rng = np.random.default_rng(7)
    reps, passes = 60, 0
    for _ in range(reps):
        monitor = gate.sequential(max_n=150)
        while not monitor.stop:
            monitor.update(float(rng.random() < 0.5))
        est = monitor.estimate()
        passes += est.lo >= 0.5
    # α/m = 0.025; 3 MC standard errors above it
    assert passes / reps <= 0.025 + 3 * (0.025 * 0.975 / reps) ** 0.5


def test_replay_flag_never_labels_evidence_by_itself() -> None:
    """The lane comes from the generations: --lane replay alone does not relabel a result."""
    gate, node = make_gate(lane=Lane.REPLAY)
    with pytest.raises(HarnessError, match=r"demo/rate: run with --lane replay.*pass lane="):
        gate.check(outcomes(80, 100))
    assert not [v for k, v in node.user_properties if k == EVIDENCE_PROPERTY]  # no evidence
    gate.check(outcomes(80, 100), lane="replay")
    [payload] = [v for k, v in node.user_properties if k == EVIDENCE_PROPERTY]
    rec = EvidenceRecord.model_validate_json(str(payload))
    assert rec.lane is Lane.REPLAY
    assert make_gate()[0].check(outcomes(80, 100), lane=None).verdict is Verdict.PASS


def test_estimate_and_holm_p_value_use_the_run_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """One seed for the gate's interval and its Holm/BH p-value (--harness-seed), not 0."""
    from harness import metrics

    seen: dict[str, int] = {}
    estimate, p_value = metrics.estimate_metric, metrics.p_value

    def spy_estimate(*args: Any, seed: int = 0, **kw: Any) -> Any:
        seen["estimate"] = seed
        return estimate(*args, seed=seed, **kw)

    def spy_p(*args: Any, seed: int = 0, **kw: Any) -> float:
        seen["p_value"] = seed
        return p_value(*args, seed=seed, **kw)

    monkeypatch.setattr(metrics, "estimate_metric", spy_estimate)
    monkeypatch.setattr(metrics, "p_value", spy_p)
    gate, node = make_gate(seed=7)
    gate.check(outcomes(80, 100))
    assert seen == {"estimate": 7, "p_value": 7}
    rec = EvidenceRecord.model_validate_json(str(node.user_properties[0][1]))
    assert rec.p_value is not None
