"""The end-of-run summary table for the terminal (rich), shared by the plugin and the CLI."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.accounting import RunAccount
from harness.evidence import EvidenceRecord
from harness.report.accounting import account_lines
from harness.report.compare import DeltaRow
from harness.report.summary import PhaseSummary, fmt_num, summarize

__all__ = [
    "delta_table",
    "print_deltas",
    "print_summary",
    "render_account",
    "render_text",
    "summary_table",
]

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


def _fits(console: Console, table: Table) -> bool:
    """Would the table show every cell unwrapped at this console's width?"""
    wide = console.options.update(max_width=10_000)
    return console.measure(table, options=wide).maximum <= console.width


def _stacked(console: Console, title: str, table: Table) -> None:
    """A narrow console (an 80-column CI log): one block per row, 'column: value' lines,
    instead of a table whose number columns collapse into '…'."""
    console.print(title, markup=False, soft_wrap=True)
    headers = [str(c.header) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    for i in range(table.row_count):
        values = [str(col[i]) for col in cells]
        console.print(f"- {headers[0]}: {values[0]}", soft_wrap=True)
        for name, value in zip(headers[1:], values[1:], strict=True):
            console.print(f"    {name}: {value}", soft_wrap=True)


def _print_table(console: Console, table: Table) -> None:
    if _fits(console, table):
        console.print(table)
    else:
        _stacked(console, str(table.title or ""), table)


def print_summary(console: Console, summaries: Sequence[PhaseSummary]) -> None:
    """Each family's table followed by its plain-language line (stacked when narrow)."""
    for s in summaries:
        _print_table(console, summary_table(s))
        console.print(s.line().replace("**", ""), markup=False)


def delta_table(rows: Sequence[DeltaRow]) -> Table:
    table = Table(title="evidence deltas (current − baseline)")
    cols = ("phase", "gate", "subject", "metric", "baseline", "current", "Δ", "Δ CI", "target")
    for col in cols:
        table.add_column(col)
    table.add_column("verdict", no_wrap=True)
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
            escape(row.verdict_text + (" (regression)" if row.regression() else "")),
        )
    return table


def print_deltas(console: Console, rows: Sequence[DeltaRow]) -> None:
    """The delta table, stacked one block per gate when the console is narrow."""
    _print_table(console, delta_table(rows))


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


def render_account(account: RunAccount) -> str:
    """The gate accounting as plain lines (phase verdicts, MISSING gates, harness errors)."""
    return "\n".join(account_lines(account))
