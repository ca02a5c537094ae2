"""Every gate stays traceable: named in the catalogue and the traceability matrix, sourced,
and decided by a suite test.

A gate added to ``gates/<phase>.yaml`` without a ``source:``, without a row in
``docs/gates.md`` carrying its threshold, without a row in ``docs/traceability.md`` or
without a ``@pytest.mark.gate`` test in ``suites/<phase>/`` fails here, naming the gate and
the fix.  Source scans only: nothing is run.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from harness.spec import GateSpec, PhaseSpec, load_phases

ROOT = Path(__file__).resolve().parents[2]
PHASES = load_phases(ROOT / "gates")
GATES = [(p, g) for p in PHASES for g in p.gates]
IDS = [f"{p.phase}.{g.id}" for p, g in GATES]


def _doc_lines(name: str) -> list[str]:
    """Table rows and headings of ``docs/<name>`` (where a gate is catalogued)."""
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.startswith(("|", "#"))]


def _renderings(t: float) -> set[str]:
    """Ways the docs write a threshold: 0.6, 0.60, 60 %, 4,000, 108000, ln 2, 1e-4, −0.05."""
    out = {f"{t:g}", f"{t:.2f}", f"{t:.1f}"}
    if t == int(t):
        out |= {str(int(t)), f"{int(t):,}"}
    if 0 < abs(t) < 1:
        out |= {f"{t * 100:g} %", f"{t * 100:g}%"}
    if math.isclose(t, math.log(2)):
        out.add("ln 2")
    if t and abs(t) < 1e-3:
        out.add(f"{t:.0e}".replace("e-0", "e-"))
    return out | {r.replace("-", "−") for r in out}


def _suite_gate_ids(phase: str) -> set[str]:
    """Gate ids named by ``@pytest.mark.gate(...)`` decorators in ``suites/<phase>/``."""
    found: set[str] = set()
    for path in sorted((ROOT / "suites" / phase).glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or ast.unparse(node.func) != "pytest.mark.gate":
                continue
            found |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return found


@pytest.mark.parametrize(("phase", "gate"), GATES, ids=IDS)
def test_gate_has_a_source(phase: PhaseSpec, gate: GateSpec) -> None:
    assert phase.source.strip(), f"gates/{phase.phase}.yaml: phase `source:` is empty"
    assert gate.source.strip(), (
        f"gates/{phase.phase}.yaml gate {gate.id}: `source:` is empty; quote the brief "
        "criterion (or the issue) the gate decides"
    )


@pytest.mark.parametrize(("phase", "gate"), GATES, ids=IDS)
def test_gate_is_in_the_traceability_matrix(phase: PhaseSpec, gate: GateSpec) -> None:
    rows = [ln for ln in _doc_lines("traceability.md") if f"`{gate.id}`" in ln]
    assert rows, (
        f"docs/traceability.md has no row naming `{gate.id}` (gates/{phase.phase}.yaml); "
        "add it under its brief note (or under the project's own gates) with its criterion"
    )


@pytest.mark.parametrize(("phase", "gate"), GATES, ids=IDS)
def test_gate_is_in_the_catalogue_with_its_threshold(phase: PhaseSpec, gate: GateSpec) -> None:
    rows = [ln for ln in _doc_lines("gates.md") if f"`{gate.id}`" in ln]
    assert rows, (
        f"docs/gates.md has no table row or heading naming `{gate.id}` "
        f"(gates/{phase.phase}.yaml); add it to the phase's table"
    )
    symbols = ("≤", "<") if gate.direction == "le" else ("≥", ">", "=")
    assert any(any(sym in ln for sym in symbols) for ln in rows), (
        f"docs/gates.md: the row of `{gate.id}` shows no {' or '.join(symbols)} "
        f"(gates/{phase.phase}.yaml decides it `{gate.direction}`)"
    )
    needed = [(n, t) for n, t in gate.tiers.items() if n != "stretch"]
    for name, t in needed:
        assert any(any(r in ln for r in _renderings(t)) for ln in rows), (
            f"docs/gates.md: the row of `{gate.id}` does not show its {name} threshold {t:g} "
            f"(gates/{phase.phase}.yaml); rows found: {rows}"
        )


@pytest.mark.parametrize("phase", PHASES, ids=[p.phase for p in PHASES])
def test_every_gate_has_a_suite_test(phase: PhaseSpec) -> None:
    missing = sorted({g.id for g in phase.gates} - _suite_gate_ids(phase.phase))
    assert not missing, (
        f"gates/{phase.phase}.yaml declares {missing} but no test in suites/{phase.phase}/ "
        "carries @pytest.mark.gate for it (it would always be MISSING)"
    )


def test_renderings_cover_the_docs_formats() -> None:
    assert {"0.6", "60 %", "0.60"} <= _renderings(0.6)
    assert {"4,000", "4000"} <= _renderings(4000.0)
    assert "ln 2" in _renderings(math.log(2))
    assert "1e-4" in _renderings(1e-4)
    assert "−0.05" in _renderings(-0.05)
