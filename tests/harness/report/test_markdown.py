"""gate-report.md, plots and JUnit properties rendered from evidence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.evidence import EvidenceRecord
from harness.report.junit import gate_properties
from harness.report.markdown import render_markdown
from harness.report.writer import write_report
from harness.spec import PhaseSpec

MakeRecord = Callable[..., EvidenceRecord]

LEGACY = PhaseSpec.model_validate(
    {
        "phase": "legacy",
        "gates": [
            {
                "id": "old",
                "metric": "proportion",
                "direction": "ge",
                "rule": "point",
                "tiers": {"primary": 0.5},
            }
        ],
    }
)


def _records(make_record: MakeRecord) -> list[EvidenceRecord]:
    return [
        make_record("strong", 90, 100),
        make_record("edge", 52, 100),
        make_record("strong", 100, 100, subject="oracle", expect="PASS"),
        make_record("strong", 90, 100, lane="replay", subject="recorded"),
        make_record("old", 51, 100, phase=LEGACY),
    ]


def test_tables_labels_and_deltas(make_record: MakeRecord) -> None:
    recs = _records(make_record)
    baseline = [make_record("strong", 80, 100)]
    md = render_markdown(recs, baseline=baseline)
    header = (
        "| gate | metric | estimate | CI | threshold | tier | verdict | p (adj.) | n | n needed "
        "| lane | baseline | Δ |"
    )
    assert header in md
    assert "| strong | proportion | 0.9 |" in md and "| 0.8 | +0.1 |" in md
    edge = next(line for line in md.splitlines() if line.startswith("| edge "))
    assert "**INCONCLUSIVE**" in edge and edge.split("|")[10].strip().replace(",", "").isdigit()
    assert "### Controls" in md and "| strong | proportion | 1 |" in md and "| ok |" in md
    assert "(replay)" in md and "not a real-model verdict" in md
    assert "PASS (legacy point rule)" in md
    assert md.count("## Phase `") == 2
    assert "each one-sided at α/m = 0.05/2" in md


def test_write_report_with_plots(tmp_path: Path, make_record: MakeRecord) -> None:
    path = write_report(_records(make_record), tmp_path)
    text = path.read_text()
    assert path.name == "gate-report.md"
    for phase in ("demo", "legacy"):
        png = tmp_path / "plots" / f"{phase}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{phase}.png)" in text


def test_empty_report_says_so(tmp_path: Path) -> None:
    text = write_report([], tmp_path).read_text()
    assert "No gate evidence was recorded" in text


def test_junit_properties_are_flat_and_prefixed(make_record: MakeRecord) -> None:
    rec = make_record("edge", 52, 100)
    props = dict(gate_properties(rec))
    assert props["gate.verdict"] == "INCONCLUSIVE" and props["gate.id"] == "edge"
    assert int(props["gate.n_needed"]) > 100
    second = gate_properties(rec, index=1)
    assert all(name.startswith("gate#2.") for name, _ in second)


def test_adjusted_p_values_are_shown_with_their_level(make_record: MakeRecord) -> None:
    # edge: 59/100, p ≈ 0.044 — INCONCLUSIVE at α/2, Holm-adjusted p ≤ α upgrades it
    recs = [make_record("strong", 90, 100), make_record("edge", 59, 100)]
    md = render_markdown(recs)
    edge = next(line for line in md.splitlines() if line.startswith("| edge "))
    p = recs[1].p_value
    assert p is not None and f"| {p:.3g} ({p:.3g}) |" in edge  # rank 2 of 2: Holm keeps p
    assert "INCONCLUSIVE → PASS (Holm)" in edge
    # the tier column shows the tier the upgraded PASS meets, not the α/m decision's "none"
    assert "| primary | **INCONCLUSIVE → PASS (Holm)** |" in edge
    assert "adjusted p-values in parentheses, compared with α = 0.05" in md
    assert f"Holm: adjusted p {p:.3g} ≤ α 0.05 (rank 2 of 2, step level 0.05) → upgraded" in md
    uncorrected = PhaseSpec.model_validate(
        {**LEGACY.model_dump(mode="json"), "multiplicity": "none"}
    )
    plain = render_markdown([make_record("old", 51, 100, phase=uncorrected)])
    assert "adjusted p-values" not in plain and "Holm:" not in plain
    old = next(line for line in plain.splitlines() if line.startswith("| old "))
    assert "(" not in old.split("|")[8]  # the p-value alone
