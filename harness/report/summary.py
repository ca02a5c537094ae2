"""Phase summaries built from evidence records: the one view every report renders.

The markdown report, the terminal table, the plots and the JUnit properties all
read the same :class:`GateRow` objects, so they cannot disagree.  The phase-level
multiplicity correction (Holm by default, BH optional) comes from each record's
stored ``adjustment`` (see :mod:`harness.adjustment`, which also fills it
in for evidence written without one): each test item decided at the Bonferroni
level α/m, which is valid on its own; Holm can then only *upgrade* an
INCONCLUSIVE gate to PASS, and every such upgrade is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.adjustment import adjust_records
from harness.decision import Verdict
from harness.evidence import EvidenceRecord, Lane

__all__ = [
    "GateRow",
    "PhaseSummary",
    "fmt_num",
    "match_baseline",
    "summarize",
    "threshold_text",
]


def fmt_num(x: float | None, digits: int = 4) -> str:
    """Compact number for tables; '—' for missing / NaN."""
    if x is None:
        return "—"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(xf):
        return "—"
    if math.isinf(xf):
        return "∞" if xf > 0 else "−∞"
    return f"{xf:.{digits}g}"


def _f(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def threshold_text(record: EvidenceRecord) -> str:
    """'≥ 0.6 primary · ≥ 0.45 fallback' from the spec stored in the record."""
    sym = "≥" if record.direction == "ge" else "≤"
    tiers = record.spec.get("tiers") or {}
    parts = [
        f"{sym} {fmt_num(tiers[name])} {name}"
        for name in ("stretch", "primary", "fallback")
        if tiers.get(name) is not None
    ]
    if not parts:
        return f"{sym} {fmt_num(record.decision.get('threshold'))}"
    return " · ".join(parts)


@dataclass
class GateRow:
    """One gate on one subject, with everything a table row shows."""

    record: EvidenceRecord
    baseline: EvidenceRecord | None = None

    @property
    def p_adjusted(self) -> float | None:
        """The Holm/BH-adjusted p-value (``None``: not corrected, or no p-value)."""
        adj = self.record.adjustment
        return None if adj is None else adj.p_adjusted

    @property
    def upgraded(self) -> bool:
        """INCONCLUSIVE at α/m but PASS after the phase's Holm/BH correction."""
        adj = self.record.adjustment
        return adj is not None and adj.upgraded

    @property
    def verdict(self) -> Verdict:
        return self.record.verdict

    @property
    def effective_verdict(self) -> Verdict:
        return Verdict.PASS if self.upgraded else self.verdict

    @property
    def value(self) -> float:
        return _f(self.record.estimate.get("value"))

    @property
    def lo(self) -> float:
        return _f(self.record.estimate.get("lo"))

    @property
    def hi(self) -> float:
        return _f(self.record.estimate.get("hi"))

    @property
    def n(self) -> int:
        return int(self.record.estimate.get("n", 0))

    @property
    def threshold(self) -> float:
        return _f(self.record.decision.get("threshold"))

    @property
    def legacy(self) -> bool:
        return self.record.decision.get("rule") == "point"

    @property
    def delta(self) -> float | None:
        if self.baseline is None:
            return None
        return self.value - _f(self.baseline.estimate.get("value"))

    def verdict_text(self, *, multiplicity: str = "holm") -> str:
        """Verdict with its labels: Holm upgrade, legacy rule, replay lane, control check."""
        text = str(self.verdict)
        if self.upgraded:
            text = f"{text} → PASS ({multiplicity.upper() if multiplicity == 'bh' else 'Holm'})"
        if self.legacy:
            text += " (legacy point rule)"
        if self.record.lane is Lane.REPLAY:
            text += " (replay)"
        return text


@dataclass
class PhaseSummary:
    """The gates of one phase for one subject in one lane (one multiplicity family)."""

    phase: str
    lane: Lane
    subject: str
    multiplicity: str
    family_size: int
    rows: list[GateRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[Verdict, int]:
        out = dict.fromkeys(Verdict, 0)
        for row in self.rows:
            out[row.effective_verdict] += 1
        return out

    @property
    def is_control(self) -> bool:
        return self.lane is Lane.CONTROL

    @property
    def controls_ok(self) -> bool:
        return all(row.record.control_ok is not False for row in self.rows)

    def line(self) -> str:
        """One plain-language sentence a reader can quote."""
        c = self.counts
        total = len(self.rows)
        who = f"subject '{self.subject}' ({self.lane} lane)"
        if self.is_control:
            bad = [r.record.gate for r in self.rows if r.record.control_ok is False]
            if bad:
                return (
                    f"**{self.phase}** — control {who}: HARNESS ERROR — control verdicts differ "
                    f"from the expected ones on {', '.join(bad)}; no model verdict in this phase "
                    "can be trusted until this is fixed."
                )
            expected = ", ".join(
                f"{r.record.gate}={r.record.expect}" for r in self.rows if r.record.expect
            )
            return (
                f"**{self.phase}** — control {who}: all {total} gate(s) gave the expected "
                f"verdict ({expected}); the harness behaves as designed on this control."
            )
        failed = [r.record.gate for r in self.rows if r.effective_verdict is Verdict.FAIL]
        unsure = [r for r in self.rows if r.effective_verdict is Verdict.INCONCLUSIVE]
        upgraded = [r.record.gate for r in self.rows if r.upgraded]
        parts = [f"{c[Verdict.PASS]} of {total} gate(s) PASS"]
        if failed:
            parts.append(f"FAIL: {', '.join(failed)}")
        if unsure:
            needs = [
                f"{r.record.gate} (n≈{r.record.decision['n_needed']:,} would decide)"
                if r.record.decision.get("n_needed")
                else r.record.gate
                for r in unsure
            ]
            parts.append(f"INCONCLUSIVE: {', '.join(needs)}")
        if upgraded:
            parts.append(f"upgraded by {self.multiplicity_label}: {', '.join(upgraded)}")
        parts += self._evaluator_notes()
        # this subject's gates only: the phase verdict covers every declared gate and every
        # subject (a phase split over subjects is passed only when all of them are), and it
        # is stated once, in the accounting ("Every declared gate")
        if failed:
            overall = "this subject's gates NOT passed"
        elif unsure:
            overall = "this subject's gates not decided — more data needed"
        else:
            overall = "this subject's gates passed"
        if self.lane is Lane.REPLAY:
            overall += " (replay lane: recorded generations, not a real-model verdict)"
        return f"**{self.phase}** — {who}: {overall}; " + "; ".join(parts) + "."

    def _evaluator_notes(self) -> list[str]:
        """Phase-level facts evaluators put in ``extra``: tier ladder, samples saved."""
        notes: list[str] = []
        for row in self.rows:
            extra = row.record.extra or {}
            ladder = extra.get("tier_ladder")
            if isinstance(ladder, dict) and ladder.get("tier"):
                notes.append(f"tier ladder: {ladder['tier']}")
            run = extra.get("run")
            if isinstance(run, dict) and run.get("samples_saved"):
                notes.append(f"{row.record.gate}: {run['samples_saved']:,} samples saved")
        return list(dict.fromkeys(notes))

    @property
    def multiplicity_label(self) -> str:
        return {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "none"}.get(
            self.multiplicity, self.multiplicity
        )


def match_baseline(
    record: EvidenceRecord, baseline: Sequence[EvidenceRecord]
) -> EvidenceRecord | None:
    """The baseline record for the same gate: same subject if present, else the lane's only one."""
    exact = [b for b in baseline if b.key == record.key]
    if exact:
        return exact[-1]
    same_gate = [
        b for b in baseline if (b.phase, b.gate, b.lane) == (record.phase, record.gate, record.lane)
    ]
    return same_gate[-1] if len(same_gate) == 1 else None


def summarize(
    records: Iterable[EvidenceRecord],
    *,
    baseline: Sequence[EvidenceRecord] = (),
) -> list[PhaseSummary]:
    """Group records into multiplicity families (phase × lane × subject) in a stable order."""
    ordered = adjust_records(sorted(records, key=EvidenceRecord.sort_key))
    groups: dict[tuple[str, Lane, str], PhaseSummary] = {}
    for rec in ordered:
        key = (rec.phase, rec.lane, rec.subject)
        if key not in groups:
            groups[key] = PhaseSummary(
                phase=rec.phase,
                lane=rec.lane,
                subject=rec.subject,
                multiplicity=rec.multiplicity,
                family_size=rec.family_size,
            )
        groups[key].rows.append(GateRow(rec, baseline=match_baseline(rec, baseline)))
    return list(groups.values())
