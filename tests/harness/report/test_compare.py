"""Evidence deltas between two runs, paired by item when both kept their outcomes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.evidence import EvidenceRecord, EvidenceStore
from harness.report.compare import compare_files, render_delta_markdown

MakeRecord = Callable[..., EvidenceRecord]


def _run(tmp: Path, make_record: MakeRecord, k_strong: int, k_edge: int) -> Path:
    recs = [
        make_record("strong", k_strong, 100, evidence_dir=tmp),
        make_record("edge", k_edge, 100, evidence_dir=tmp),
    ]
    EvidenceStore(tmp).rewrite(recs)
    return tmp


def test_delta_with_paired_ci(tmp_path: Path, make_record: MakeRecord) -> None:
    base = _run(tmp_path / "base", make_record, 70, 60)
    cur = _run(tmp_path / "cur", make_record, 80, 60)
    rows, warnings = compare_files(base, cur / "evidence.jsonl")
    assert warnings == []
    by_gate = {r.current.gate: r for r in rows}
    strong = by_gate["strong"]
    assert strong.delta is not None and abs(strong.delta - 0.10) < 1e-12
    # items 70..79 flipped 0 → 1 on the same prompts: paired Δ CI is above 0 and holds 0.1
    assert strong.ci is not None and 0 < strong.ci[0] <= 0.1 <= strong.ci[1]
    assert strong.n_pairs == 100
    assert by_gate["edge"].delta == 0.0 and by_gate["edge"].ci == (0.0, 0.0)
    md = render_delta_markdown(rows)
    header = md.splitlines()[0]
    for col in ("metric", "baseline", "current", "Δ", "target"):
        assert f"| {col} |" in header or f"| {col} " in header
    assert "| 0.7 | 0.8 | +0.1 |" in md
    assert "≥ 0.5 primary" in md and "PASS → PASS" in md


def test_new_gate_and_missing_outcomes(tmp_path: Path, make_record: MakeRecord) -> None:
    base = tmp_path / "base"
    EvidenceStore(base).rewrite([make_record("strong", 70, 100)])  # no raw outcome files
    cur = _run(tmp_path / "cur", make_record, 80, 60)
    rows, _ = compare_files(base, cur)
    by_gate = {r.current.gate: r for r in rows}
    assert by_gate["strong"].ci is None and by_gate["strong"].delta is not None
    assert by_gate["edge"].baseline is None
    assert "— (new)" in render_delta_markdown(rows)
