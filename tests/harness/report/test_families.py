"""Holm/BH adjustments stored per record: computed once per family, read back by every report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from statsmodels.stats.multitest import multipletests

from harness.adjustment import adjust_records
from harness.decision import Verdict
from harness.evidence import EvidenceRecord
from harness.report.summary import summarize
from harness.spec import PhaseSpec

MakeRecord = Callable[..., EvidenceRecord]


def _phase(multiplicity: str, n_gates: int = 3) -> PhaseSpec:
    gate = {"metric": "proportion", "direction": "ge", "tiers": {"primary": 0.5}}
    return PhaseSpec.model_validate(
        {
            "phase": f"p-{multiplicity}",
            "alpha": 0.05,
            "multiplicity": multiplicity,
            "gates": [{**gate, "id": f"g{i}"} for i in range(n_gates)],
        }
    )


def test_holm_adjustment_matches_statsmodels_and_upgrades(make_record: MakeRecord) -> None:
    # 59/100 vs 0.5: p ≈ 0.044 — INCONCLUSIVE at α/2, but Holm compares it with α at rank 2
    strong, edge = make_record("strong", 90, 100), make_record("edge", 59, 100)
    adjusted = {r.gate: r for r in adjust_records([edge, strong])}
    assert [r.gate for r in adjust_records([edge, strong])] == ["edge", "strong"]  # order kept
    _, expected, _, _ = multipletests([edge.p_value, strong.p_value], method="holm")
    e, s = adjusted["edge"].adjustment, adjusted["strong"].adjustment
    assert e is not None and s is not None
    assert e.p_adjusted == pytest.approx(expected[0]) and s.p_adjusted == pytest.approx(expected[1])
    assert (s.rank, e.rank) == (1, 2)
    assert s.alpha_step == pytest.approx(0.05 / 2) and e.alpha_step == pytest.approx(0.05)
    assert e.upgraded and e.verdict is Verdict.PASS and edge.verdict is Verdict.INCONCLUSIVE
    assert not s.upgraded and s.verdict is Verdict.PASS
    assert e.method == "holm" and e.family_size == 2 and e.family_tested == 2


def test_absent_gates_pad_the_family_with_p_one(make_record: MakeRecord) -> None:
    phase = _phase("holm", n_gates=3)
    [rec] = adjust_records([make_record("g0", 59, 100, phase=phase)])
    adj = rec.adjustment
    assert adj is not None and adj.family_size == 3 and adj.family_tested == 1
    assert adj.rank == 1 and adj.alpha_step == pytest.approx(0.05 / 3)
    assert adj.p_adjusted == pytest.approx(min(1.0, 3 * (rec.p_value or 0)))
    assert not adj.upgraded


def test_bh_step_levels(make_record: MakeRecord) -> None:
    phase = _phase("bh", n_gates=3)
    recs = [make_record(f"g{i}", k, 100, phase=phase) for i, k in enumerate((90, 60, 58))]
    out = adjust_records(recs)
    _, expected, _, _ = multipletests([r.p_value for r in recs], method="fdr_bh")
    for rec, p_adj in zip(out, expected, strict=True):
        assert rec.adjustment is not None and rec.adjustment.method == "bh"
        assert rec.adjustment.p_adjusted == pytest.approx(p_adj)
        assert rec.adjustment.alpha_step == pytest.approx(0.05 * rec.adjustment.rank / 3)


def test_no_adjustment_without_correction_or_p_value(make_record: MakeRecord) -> None:
    phase = _phase("none", n_gates=2)
    assert all(
        r.adjustment is None for r in adjust_records([make_record("g0", 59, 100, phase=phase)])
    )
    control = make_record("strong", 100, 100, subject="oracle", expect="PASS")
    no_p = control.model_copy(update={"p_value": None})
    assert adjust_records([no_p])[0].adjustment is None
    # a control is adjusted (its own family) but never upgraded: its verdict is the check
    [ctl] = adjust_records([make_record("edge", 59, 100, subject="oracle", expect="PASS")])
    assert ctl.adjustment is not None and not ctl.adjustment.upgraded


def test_stored_adjustments_are_authoritative(make_record: MakeRecord) -> None:
    recs = adjust_records([make_record("strong", 90, 100), make_record("edge", 59, 100)])
    stored = recs[1].adjustment
    assert stored is not None
    tampered = stored.model_copy(update={"upgraded": False, "verdict": Verdict.INCONCLUSIVE})
    recs[1] = recs[1].model_copy(update={"adjustment": tampered})
    # the report shows what the evidence says ...
    [summary] = summarize(recs)
    assert not any(r.upgraded for r in summary.rows)
    # ... unless asked to recompute, or the family is incomplete (then it is redone whole)
    assert adjust_records(recs, recompute=True)[1].adjustment == stored
    recs[0] = recs[0].model_copy(update={"adjustment": None})
    assert adjust_records(recs)[1].adjustment == stored


def test_summary_reads_the_same_numbers_as_stored(make_record: MakeRecord) -> None:
    recs = [make_record("strong", 90, 100), make_record("edge", 59, 100)]
    fresh = summarize(recs)
    stored = summarize(adjust_records(recs))
    assert [(r.p_adjusted, r.upgraded) for s in fresh for r in s.rows] == [
        (r.p_adjusted, r.upgraded) for s in stored for r in s.rows
    ]


def test_holm_never_upgrades_a_verdict_downgraded_for_sandbox_errors(
    make_record: MakeRecord,
) -> None:
    """The sandbox-error guard says the verdict would be a guess: Holm must not PASS it."""
    strong, edge = make_record("strong", 90, 100), make_record("edge", 59, 100)
    guarded = edge.model_copy(
        update={"decision": {**edge.decision, "downgraded": "sandbox_errors", "tier": "none"}}
    )
    adjusted = {r.gate: r for r in adjust_records([guarded, strong])}
    adj = adjusted["edge"].adjustment
    assert adj is not None and not adj.upgraded and adj.verdict is Verdict.INCONCLUSIVE


def _tiered_phase() -> PhaseSpec:
    """Three tiers: a PASS needs the fallback (0.5); primary 0.6 and stretch 0.7 are ambitions."""
    gate = {"metric": "proportion", "direction": "ge"}
    return PhaseSpec.model_validate(
        {
            "phase": "tiered",
            "alpha": 0.05,
            "multiplicity": "holm",
            "gates": [
                {**gate, "id": "strong", "tiers": {"primary": 0.6, "fallback": 0.5}},
                {**gate, "id": "edge", "tiers": {"stretch": 0.7, "primary": 0.6, "fallback": 0.5}},
            ],
        }
    )


def test_an_upgraded_pass_meets_the_tier_its_pass_needs(make_record: MakeRecord) -> None:
    """Holm upgrades 'edge' to PASS: its final tier is the required one, never "none"."""
    phase = _tiered_phase()
    strong, edge = (
        make_record("strong", 90, 100, phase=phase),
        make_record("edge", 59, 100, phase=phase),
    )
    assert edge.verdict is Verdict.INCONCLUSIVE and edge.decision["tier"] == "none"
    adjusted = {r.gate: r for r in adjust_records([strong, edge])}
    e, s = adjusted["edge"], adjusted["strong"]
    assert e.adjustment is not None and e.adjustment.upgraded
    assert e.adjustment.tier == e.final_tier == "fallback"  # p tested the fallback threshold
    assert e.final_verdict is Verdict.PASS
    # not upgraded: the tier is the decision's own (90/100 clears primary 0.6 on its bound)
    assert s.adjustment is not None and s.adjustment.tier == s.final_tier == "primary"
    # one tier: the required tier is primary
    plain = adjust_records([make_record("strong", 90, 100), make_record("edge", 59, 100)])
    assert [r.final_tier for r in plain] == ["primary", "primary"]


def test_a_gate_left_undecided_by_holm_keeps_tier_none(make_record: MakeRecord) -> None:
    phase = _phase("holm", n_gates=3)
    [rec] = adjust_records([make_record("g0", 59, 100, phase=phase)])
    assert rec.adjustment is not None and not rec.adjustment.upgraded
    assert rec.final_tier == "none" and rec.final_verdict is Verdict.INCONCLUSIVE


def test_stored_adjustments_without_a_tier_are_rederived(make_record: MakeRecord) -> None:
    """Evidence written before ``Adjustment.tier`` existed: the family is adjusted afresh."""
    recs = adjust_records([make_record("strong", 90, 100), make_record("edge", 59, 100)])
    old = [
        r.model_copy(update={"adjustment": r.adjustment.model_copy(update={"tier": None})})
        for r in recs
        if r.adjustment is not None
    ]
    assert old[1].final_tier == "none"  # what a report of the raw old record would say
    assert adjust_records(old) == recs
    [summary] = summarize(old)
    assert [r.record.final_tier for r in summary.rows] == ["primary", "primary"]


def test_a_broken_stored_tier_set_is_named(make_record: MakeRecord) -> None:
    from harness.adjustment import upgraded_tier
    from harness.errors import EvidenceError

    edge = make_record("edge", 59, 100)
    broken = edge.model_copy(update={"spec": {**edge.spec, "tiers": {"primary": "high"}}})
    with pytest.raises(EvidenceError, match=r"(?s)edge: field spec.tiers=.*re-run the gate"):
        upgraded_tier(broken)
    # a record without a stored spec falls back to the decision's tier order
    assert upgraded_tier(edge.model_copy(update={"spec": {}})) == "primary"
