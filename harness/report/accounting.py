"""Render the run's gate accounting (:mod:`harness.accounting`): phase verdicts, MISSING gates.

The accounting is decided on the controller; this module only turns it into
markdown lines for ``gate-report.md`` and plain lines for the terminal.
"""

from __future__ import annotations

from harness.accounting import FinalStatus, RunAccount

__all__ = ["account_lines", "account_markdown"]


def account_lines(account: RunAccount) -> list[str]:
    """Plain text: one line per phase, one per MISSING gate, one per harness error."""
    lines: list[str] = []
    for phase in account.phases:
        lines.append(phase.line())
        for status in phase.missing:
            where = f" [{status.nodeid}]" if status.nodeid else ""
            lines.append(f"  MISSING {phase.phase}/{status.gate}{where}: {status.reason}")
    if account.not_asked_phases:
        lines.append("phases not asked for (deselected): " + ", ".join(account.not_asked_phases))
    lines += [f"HARNESS ERROR: {e}" for e in account.harness_errors]
    return lines


def account_markdown(account: RunAccount) -> list[str]:
    """The report's "Every declared gate" section."""
    lines = ["## Every declared gate", ""]
    if not account.phases:
        lines += ["No phase was selected in this run.", ""]
    for phase in account.phases:
        lines.append(f"- **{phase.phase}**: " + phase.line().split(": ", 1)[1])
    if account.not_asked_phases:
        lines.append("- phases not asked for (deselected): " + ", ".join(account.not_asked_phases))
    lines.append("")
    missing = [s for p in account.phases for s in p.statuses if s.status is FinalStatus.MISSING]
    if missing:
        lines += ["| phase | gate | status | test | reason |", "|---|---|---|---|---|"]
        for s in missing:
            cells = [s.phase, s.gate, "**MISSING**", s.nodeid or "—", s.reason]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines += _no_claim_markdown(account)
    if account.harness_errors:
        lines += ["**Harness errors** (the run exits 2):", ""]
        lines += [f"- {_cell(e)}" for e in account.harness_errors]
        lines.append("")
    return lines


def _no_claim_markdown(account: RunAccount) -> list[str]:
    """Tests skipped on purpose (``gate.no_claim``): not part of any verdict, never silent."""
    rows = [(p.phase, c) for p in account.phases for c in p.no_claims]
    if not rows:
        return []
    lines = [
        f"<details><summary>{len(rows)} test(s) skipped on purpose: their subject (a control) "
        "makes no claim on the gate; they do not count toward any verdict</summary>",
        "",
        "| phase | gate | test | why no claim |",
        "|---|---|---|---|",
    ]
    for phase, c in rows:
        lines.append(
            "| " + " | ".join(_cell(x) for x in (phase, c.gate, c.nodeid, c.reason)) + " |"
        )
    return [*lines, "", "</details>", ""]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
