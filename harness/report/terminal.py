"""The end-of-run summary table for the terminal (rich), shared by the plugin and the CLI."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.evidence import EvidenceRecord
from harness.report.compare import DeltaRow
from harness.report.summary import PhaseSummary, fmt_num, summarize

__all__ = ["delta_table", "print_summary", "render_text", "summary_table"]

_STYLE = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}


def _required(rec: EvidenceRecord) -> str:
    sym = "≥" if rec.direction == "ge" else "≤"
    tiers = rec.spec.get("tiers") or {}
    name = "fallback" if tiers.get("fallback") is not None else "primary"
    return f"{sym} {fmt_num(rec.decision.get('threshold'))} ({name})"


def summary_table(summary: PhaseSummary) -> Table:
    """One family (phase × subject × lane): gate, estimate, bounds, threshold, verdict, n."""
    kind = "control" if summary.is_control else f"{summary.lane} lane"
    table = Table(title=f"{summary.phase} — {summary.subject} ({kind})", title_justify="left")
    for col in ("gate", "estimate", "CI", "needs", "verdict"):
        table.add_column(col, no_wrap=col in {"gate", "verdict", "CI", "needs"})
    table.add_column("n", justify="right")
    table.add_column("n needed", justify="right")
    for row in summary.rows:
        rec = row.record
        verdict = row.verdict_text(multiplicity=summary.multiplicity)
        if rec.expect is not None:
            verdict += " ✓" if rec.control_ok else f" ✗ expected {rec.expect}"
        style = _STYLE.get(str(row.effective_verdict), "")
        if rec.control_ok is False:
            style = "bold red"
        needed = rec.decision.get("n_needed")
        table.add_row(
            rec.gate,
            fmt_num(row.value),
            f"[{fmt_num(row.lo)}, {fmt_num(row.hi)}]",
            _required(rec),
            f"[{style}]{escape(verdict)}[/]" if style else escape(verdict),
            f"{row.n:,}",
            f"{int(needed):,}" if needed else "—",
        )
    return table


def print_summary(console: Console, summaries: Sequence[PhaseSummary]) -> None:
    """Each family's table followed by its plain-language line."""
    for s in summaries:
        console.print(summary_table(s))
        console.print(s.line().replace("**", ""), markup=False)


def delta_table(rows: Sequence[DeltaRow]) -> Table:
    table = Table(title="evidence deltas (current − baseline)")
    for col in ("phase", "gate", "subject", "metric", "baseline", "current", "Δ", "Δ CI", "target"):
        table.add_column(col)
    for row in rows:
        rec = row.current
        base = fmt_num(row.baseline.estimate.get("value")) if row.baseline else "— (new)"
        delta = "—" if row.delta is None else f"{'+' if row.delta > 0 else ''}{fmt_num(row.delta)}"
        ci = f"[{fmt_num(row.ci[0])}, {fmt_num(row.ci[1])}]" if row.ci else "—"
        table.add_row(
            rec.phase,
            rec.gate,
            rec.subject,
            rec.metric,
            base,
            fmt_num(rec.estimate.get("value")),
            delta,
            ci,
            row.target,
        )
    return table


def render_text(
    records: Sequence[EvidenceRecord],
    *,
    width: int = 120,
    color: bool = False,
    baseline: Sequence[EvidenceRecord] = (),
) -> str:
    """Summary table plus one plain line per phase, as text (for pytest's terminal writer)."""
    summaries = summarize(records, baseline=baseline)
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )
    print_summary(console, summaries)
    return buf.getvalue()
