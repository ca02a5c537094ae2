"""``gate-report.md``: one table per phase, a plain summary line, controls apart.

The report is written for someone who will act on it: every row says the
estimate *and* its confidence bounds against the threshold, the verdict with
its labels (replay lane, legacy point rule, Holm upgrade), how many items were
used and how many would have decided an INCONCLUSIVE gate.  Deltas against a
baseline evidence file appear as extra columns when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.accounting import RunAccount
from harness.decision import confidence_text
from harness.evidence import EvidenceRecord
from harness.report.accounting import account_markdown
from harness.report.judged import judged_table
from harness.report.summary import GateRow, PhaseSummary, fmt_num, summarize, threshold_text

__all__ = ["render_markdown"]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _ci(row: GateRow) -> str:
    return f"[{fmt_num(row.lo)}, {fmt_num(row.hi)}]"


def _needed(row: GateRow) -> str:
    needed = row.record.decision.get("n_needed")
    return f"{int(needed):,}" if needed else "—"


def _p_cell(row: GateRow) -> str:
    """One-sided p-value of the gate's test, and the Holm/BH-adjusted one in parentheses."""
    p = row.record.p_value
    if p is None:
        return "—"
    if row.p_adjusted is None:
        return fmt_num(p, 3)
    return f"{fmt_num(p, 3)} ({fmt_num(row.p_adjusted, 3)})"


def _adjustment_text(row: GateRow, label: str) -> str:
    """' — Holm: adjusted p 0.044 ≤ α 0.05 (rank 2 of 3) → PASS' for the reasons list."""
    adj = row.record.adjustment
    if adj is None:
        return ""
    sym = "≤" if adj.p_adjusted <= adj.alpha else ">"
    text = (
        f" — {label}: adjusted p {fmt_num(adj.p_adjusted, 3)} {sym} α {fmt_num(adj.alpha)} "
        f"(rank {adj.rank} of {adj.family_size}, step level {fmt_num(adj.alpha_step, 3)})"
    )
    return text + (" → upgraded to PASS" if adj.upgraded else "")


def _delta_cells(row: GateRow) -> list[str]:
    if row.baseline is None:
        return ["—", "—"]
    delta = row.delta
    sign = "+" if delta is not None and delta > 0 else ""
    return [fmt_num(row.baseline.estimate.get("value")), f"{sign}{fmt_num(delta)}"]


def _gate_table(summary: PhaseSummary, *, with_baseline: bool) -> list[str]:
    header = [
        "gate",
        "metric",
        "estimate",
        "CI",
        "threshold",
        "tier",
        "verdict",
        "p (adj.)",
        "n",
        "n needed",
        "lane",
    ]
    if with_baseline:
        header += ["baseline", "Δ"]
    rows: list[list[object]] = []
    for row in summary.rows:
        rec = row.record
        cells: list[object] = [
            rec.gate,
            rec.metric + (f" ({rec.unit})" if rec.unit else ""),
            fmt_num(row.value),
            _ci(row),
            threshold_text(rec),
            rec.final_tier,
            f"**{row.verdict_text(multiplicity=summary.multiplicity)}**",
            _p_cell(row),
            f"{row.n:,}",
            _needed(row),
            str(rec.lane),
        ]
        if with_baseline:
            cells += _delta_cells(row)
        rows.append(cells)
    return _table(header, rows)


def _control_table(summary: PhaseSummary) -> list[str]:
    header = ["gate", "metric", "estimate", "CI", "threshold", "expected", "verdict", "check", "n"]
    rows: list[list[object]] = []
    for row in summary.rows:
        rec = row.record
        ok = rec.control_ok
        rows.append(
            [
                rec.gate,
                rec.metric,
                fmt_num(row.value),
                _ci(row),
                threshold_text(rec),
                str(rec.expect) if rec.expect is not None else "—",
                str(row.verdict),
                "ok" if ok else ("**HARNESS ERROR**" if ok is False else "—"),
                f"{row.n:,}",
            ]
        )
    return _table(header, rows)


def _level_note(summary: PhaseSummary) -> str:
    rec = summary.rows[0].record
    m = summary.family_size
    real = confidence_text(rec.alpha_decision)
    if m > 1:
        level = f"α/m = {fmt_num(rec.alpha)}/{m} (Bonferroni within the phase: {real} each)"
    else:
        level = f"α = {fmt_num(rec.alpha)} ({real} each)"
    text = (
        f"CI bounds are each one-sided at {level}; phase correction: {summary.multiplicity_label}"
    )
    if any(row.p_adjusted is not None for row in summary.rows):
        text += (
            f" (adjusted p-values in parentheses, compared with α = {fmt_num(rec.alpha)}; "
            "they can only upgrade an INCONCLUSIVE gate to PASS)"
        )
    return text + "."


def _details(summary: PhaseSummary) -> list[str]:
    """Per-gate breakdowns an evaluator attached (confusion matrices, per-category tables)."""
    lines: list[str] = []
    for row in summary.rows:
        extra = row.record.extra or {}
        text = extra.get("report_markdown") if isinstance(extra, Mapping) else None
        if isinstance(text, str) and text.strip():
            lines += [f"#### `{row.record.gate}` — details", "", text.strip(), ""]
    return lines


def render_markdown(
    records: Sequence[EvidenceRecord],
    *,
    baseline: Sequence[EvidenceRecord] = (),
    plots: Mapping[str, str] | None = None,
    title: str = "Gate report",
    header_lines: Sequence[str] = (),
    account: RunAccount | None = None,
) -> str:
    """Render the whole report; ``plots`` maps phase → relative PNG path."""
    summaries = summarize(records, baseline=baseline)
    with_baseline = bool(baseline)
    lines = [f"# {title}", ""]
    lines += [*header_lines, ""] if header_lines else []
    if account is not None:
        lines += account_markdown(account)
    if not summaries:
        lines += ["No gate evidence was recorded (no gate test called `gate.check`).", ""]
        return "\n".join(lines)
    lines += ["## Summary", ""]
    lines += [f"- {s.line()}" for s in summaries]
    lines.append("")
    phases = list(dict.fromkeys(s.phase for s in summaries))
    for phase in phases:
        mine = [s for s in summaries if s.phase == phase]
        lines += [f"## Phase `{phase}`", ""]
        for summary in (s for s in mine if not s.is_control):
            label = f"### Subject `{summary.subject}` — {summary.lane} lane"
            if summary.lane == "replay":
                label += " (recorded generations; not a real-model verdict)"
            lines += [label, "", summary.line(), ""]
            lines += _gate_table(summary, with_baseline=with_baseline)
            lines += ["", f"_{_level_note(summary)}_", ""]
            lines += judged_table(summary.rows)
            lines += _details(summary)
        controls = [s for s in mine if s.is_control]
        if controls:
            lines += ["### Controls (prove each gate can pass and fail)", ""]
            for summary in controls:
                lines += [f"#### Control subject `{summary.subject}`", "", summary.line(), ""]
                lines += _control_table(summary)
                lines.append("")
                lines += judged_table(summary.rows)
        if plots and phase in plots:
            lines += [
                f"![{phase}: estimates with confidence bounds vs thresholds]({plots[phase]})",
                "",
            ]
        lines += ["<details><summary>Decision reasons</summary>", ""]
        lines += [
            f"- `{r.record.subject}`/`{r.record.gate}`: {r.record.decision.get('reason', '')}"
            + _adjustment_text(r, s.multiplicity_label)
            for s in mine
            for r in s.rows
        ]
        lines += ["", "</details>", ""]
    return "\n".join(lines)
