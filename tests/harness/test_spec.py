"""Gate spec loading: valid specs load, malformed ones name file, gate, field, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec import DecisionRule, Direction, Multiplicity, load_phase, load_phases

VALID = """\
phase: codegen
description: code generation
source: brief 001
alpha: 0.05
gates:
  - id: pass1
    metric: pass_at_k
    params: {k: 1}
    direction: ge
    tiers: {primary: 0.60, fallback: 0.45}
  - id: latency_p95
    metric: quantile
    params: {q: 0.95}
    direction: le
    tiers: {primary: 0.5, stretch: 0.2}
    alpha: 0.01
    rule: point
  - id: uplift
    metric: pass_at_k_uplift
    params: {k_hi: 16}
    direction: ge
    tiers: {primary: 0.08}
    paired_with: pass1
"""


def write(tmp_path: Path, text: str, name: str = "codegen.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_spec_loads_with_defaults(tmp_path: Path) -> None:
    spec = load_phase(write(tmp_path, VALID))
    assert spec.phase == "codegen"
    assert spec.multiplicity is Multiplicity.HOLM
    pass1 = spec.gate("pass1")
    assert pass1.direction is Direction.GE
    assert pass1.rule is DecisionRule.BOUND
    assert pass1.tiers.required == ("fallback", 0.45)
    assert [name for name, _ in pass1.tiers.items()] == ["primary", "fallback"]
    assert spec.alpha_for(pass1) == 0.05
    latency = spec.gate("latency_p95")
    assert spec.alpha_for(latency) == 0.01
    assert latency.tiers.required == ("primary", 0.5)
    assert latency.rule is DecisionRule.POINT


def test_unknown_gate_lookup_lists_gates(tmp_path: Path) -> None:
    spec = load_phase(write(tmp_path, VALID))
    with pytest.raises(SpecError, match="has no gate 'nope'; gates: pass1, latency_p95, uplift"):
        spec.gate("nope")


def test_load_phases_reads_directory_sorted(tmp_path: Path) -> None:
    write(tmp_path, VALID, "b.yaml")
    write(tmp_path, VALID.replace("phase: codegen", "phase: safety"), "a.yaml")
    assert [p.phase for p in load_phases(tmp_path)] == ["safety", "codegen"]


def test_load_phases_rejects_duplicate_phase(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    with pytest.raises(SpecError, match=r"b\.yaml: phase 'codegen' is defined twice"):
        load_phases(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="gates directory not found; pass --gates-dir"):
        load_phases(tmp_path / "nowhere")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read gate spec"):
        load_phase(tmp_path / "absent.yaml")


GATE = "  - id: g1\n    metric: proportion\n    direction: ge\n    tiers: {primary: 0.9}\n"

MALFORMED = [
    pytest.param(
        VALID.replace("primary: 0.60", "primary: 1.7"),
        "codegen.yaml: gate 'pass1': tiers.primary=1.7 must be within [0, 1] "
        "for metric 'pass_at_k'",
        id="tier-out-of-range",
    ),
    pytest.param(
        VALID.replace("metric: pass_at_k\n", "metric: pass_at_kk\n"),
        "gate 'pass1': metric='pass_at_kk' unknown metric; did you mean 'pass_at_k'?",
        id="unknown-metric",
    ),
    pytest.param(
        VALID.replace("direction: le", "direction: lt"),
        "gate 'latency_p95': direction='lt' is not allowed; use one of 'ge' or 'le'",
        id="bad-direction",
    ),
    pytest.param(
        VALID.replace("    rule: point\n", "    rul: point\n"),
        "gate 'latency_p95': rul: is not a known field; did you mean 'rule'?",
        id="typo-field",
    ),
    pytest.param(
        VALID.replace("primary: 0.60, fallback: 0.45", "primary: 0.40, fallback: 0.45"),
        "gate 'pass1': tiers={'primary': 0.4, 'fallback': 0.45} for direction 'ge' need "
        "stretch ≥ primary ≥ fallback",
        id="tiers-misordered-ge",
    ),
    pytest.param(
        VALID.replace("primary: 0.5, stretch: 0.2", "primary: 0.5, stretch: 0.9"),
        "gate 'latency_p95': tiers={'stretch': 0.9, 'primary': 0.5} for direction 'le' need "
        "stretch ≤ primary ≤ fallback",
        id="tiers-misordered-le",
    ),
    pytest.param(
        VALID.replace("    alpha: 0.01\n", "    alpha: 0.7\n"),
        "gate 'latency_p95': alpha=0.7 must be within (0, 0.5)",
        id="gate-alpha",
    ),
    pytest.param(
        VALID.replace("alpha: 0.05\n", "alpha: 0\n", 1),
        "codegen.yaml: alpha=0 must be within (0, 0.5)",
        id="phase-alpha",
    ),
    pytest.param(
        VALID.replace("    direction: ge\n    tiers: {primary: 0.60", "    tiers: {primary: 0.60"),
        "gate 'pass1': direction: required field is missing; add it",
        id="missing-direction",
    ),
    pytest.param(
        VALID.replace("paired_with: pass1", "paired_with: pass2"),
        "paired_with='pass2' names no gate in this phase; use one of: latency_p95, pass1, uplift",
        id="bad-pairing",
    ),
    pytest.param(
        VALID + GATE.replace("g1", "pass1"),
        "id='pass1' is used by two gates; gate ids must be unique",
        id="duplicate-id",
    ),
    pytest.param(
        "phase: x\ngates: []\n",
        "codegen.yaml: gates=[] List should have at least 1 item",
        id="no-gates",
    ),
    pytest.param("- just\n- a list\n", "top level must be a mapping", id="not-a-mapping"),
    pytest.param("phase: x\ngates: [\n", "line 3, column 1: not valid YAML", id="yaml-syntax"),
    pytest.param(
        VALID.replace("id: pass1", "id: 'pass one'"),
        "gate 'pass one': id='pass one' String should match pattern",
        id="bad-id-chars",
    ),
    pytest.param(
        VALID.replace("min_n", "x").replace("    rule: point\n", "    min_n: 0\n"),
        "gate 'latency_p95': min_n=0 Input should be greater than or equal to 1",
        id="min-n-zero",
    ),
    pytest.param(
        VALID.replace("tiers: {primary: 0.08}", "tiers: {primray: 0.08}"),
        "gate 'uplift': tiers.primray: is not a known field; did you mean 'primary'?",
        id="tier-typo",
    ),
    pytest.param(
        VALID.replace("multiplicity", "x") + "multiplicity: bonferoni\n",
        "multiplicity='bonferoni' is not allowed; use one of 'holm', 'bh' or 'none'",
        id="bad-multiplicity",
    ),
    pytest.param(
        VALID.replace("params: {k: 1}\n", "params: {k: 1}\n    method: wilson\n"),
        "gate 'pass1': method='wilson' is not a calibrated method for metric 'pass_at_k' "
        "(approximate intervals false-PASS above α",
        id="approximate-method",
    ),
    pytest.param(
        VALID + GATE + "    method: jeffreys\n",
        "gate 'g1': method='jeffreys' is not a calibrated method for metric 'proportion' "
        "(approximate intervals false-PASS above α",
        id="approximate-proportion-method",
    ),
    pytest.param(
        VALID.replace("tiers: {primary: 0.08}", "tiers: {primary: 0.08}\n    method: bca"),
        "gate 'uplift': method='bca' is not a calibrated method for metric 'pass_at_k_uplift'; "
        "use one of: betting",
        id="uncalibrated-bootstrap",
    ),
    pytest.param(
        VALID + GATE.replace("metric: proportion", "metric: mean\n    bounds: unbounded"),
        "gate 'g1': normality='' must say why a Student t bound is trusted",
        id="unbounded-mean-without-reason",
    ),
    pytest.param(
        VALID + GATE.replace("metric: proportion", "metric: mean\n    bounds: [1, 0]"),
        "gate 'g1': bounds=[1.0, 0.0] must be finite [lo, hi], lo < hi",
        id="mean-bounds-reversed",
    ),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_specs_name_file_gate_field_value_and_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_phase(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_per_metric_params_are_validated_when_the_yaml_loads(tmp_path: Path) -> None:
    path = tmp_path / "ranker.yaml"
    path.write_text(
        "phase: ranker\ngates:\n  - id: latency_p95\n    metric: quantile\n"
        "    direction: le\n    tiers: {primary: 0.5}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        load_phase(path)
    text = str(info.value)
    assert "ranker.yaml: gate 'latency_p95': params.q" in text
    assert "required for metric 'quantile'; set params: {q: ...}" in text
