"""Phase summaries: families, Holm upgrades (flagged), baseline matching."""

from __future__ import annotations

from collections.abc import Callable

from harness.decision import Verdict
from harness.evidence import EvidenceRecord, Lane
from harness.report.summary import fmt_num, summarize

MakeRecord = Callable[..., EvidenceRecord]


def test_holm_upgrades_an_inconclusive_gate_and_flags_it(make_record: MakeRecord) -> None:
    # 59/100 vs 0.5: one-sided binomial p ≈ 0.044 — above α/m = 0.025 (INCONCLUSIVE at the
    # Bonferroni level) but Holm, with the other gate's tiny p, compares it with α = 0.05.
    strong = make_record("strong", 90, 100)
    edge = make_record("edge", 59, 100)
    assert edge.verdict is Verdict.INCONCLUSIVE
    assert edge.p_value is not None and 0.025 < edge.p_value < 0.05
    [summary] = summarize([edge, strong])
    rows = {r.record.gate: r for r in summary.rows}
    assert [r.record.gate for r in summary.rows] == ["strong", "edge"]  # spec order
    assert rows["edge"].upgraded and rows["edge"].effective_verdict is Verdict.PASS
    assert not rows["strong"].upgraded
    assert rows["edge"].verdict_text() == "INCONCLUSIVE → PASS (Holm)"
    assert "upgraded by Holm: edge" in summary.line()


def test_missing_family_members_count_as_p_one(make_record: MakeRecord) -> None:
    # only the edge gate ran: padding the family with p = 1 keeps Holm at α/2 for it
    [summary] = summarize([make_record("edge", 59, 100)])
    assert not summary.rows[0].upgraded


def test_controls_and_replay_are_separate_families(make_record: MakeRecord) -> None:
    recs = [
        make_record("strong", 90, 100),
        make_record("strong", 100, 100, subject="oracle", expect="PASS"),
        make_record("strong", 90, 100, lane="replay"),
    ]
    summaries = summarize(recs)
    assert [(s.lane, s.subject) for s in summaries] == [
        (Lane.REAL, "model"),
        (Lane.REPLAY, "model"),
        (Lane.CONTROL, "oracle"),
    ]
    assert "replay lane: recorded generations" in summaries[1].line()
    assert summaries[2].controls_ok and "expected verdict (strong=PASS)" in summaries[2].line()


def test_failed_control_is_reported_as_harness_error(make_record: MakeRecord) -> None:
    bad = make_record("strong", 10, 100, subject="oracle", expect="PASS")
    [summary] = summarize([bad])
    assert not summary.controls_ok and "HARNESS ERROR" in summary.line()


def test_baseline_matching_and_delta(make_record: MakeRecord) -> None:
    base = make_record("strong", 70, 100)
    cur = make_record("strong", 80, 100)
    [summary] = summarize([cur], baseline=[base])
    row = summary.rows[0]
    assert row.baseline is base and row.delta is not None
    assert abs(row.delta - 0.1) < 1e-12


def test_fmt_num() -> None:
    assert fmt_num(None) == "—" and fmt_num(float("nan")) == "—"
    assert fmt_num(float("inf")) == "∞" and fmt_num(0.123456) == "0.1235"
