"""The judged-gate table: observed rate, judge sensitivity/specificity, corrected rate, verdict.

Rendering only — every number comes from the evidence record's estimate
(``estimate.extra`` written by :func:`harness.stats.judged.judged_rate_estimate`)
and decision; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.summary import GateRow, fmt_num

__all__ = ["judged_table"]

_HEADER = (
    "| gate | subject | observed (judge flags) | judge sensitivity | judge specificity "
    "| corrected rate (Rogan–Gladen) | threshold | verdict |",
    "|---|---|---|---|---|---|---|---|",
)


def _part(extra: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    part = extra.get(name)
    return part if isinstance(part, Mapping) else None


def _rate(part: Mapping[str, Any], key: str, num: str, den: str) -> str:
    return (
        f"{fmt_num(part.get(key))} [{fmt_num(part.get('lo'))}, {fmt_num(part.get('hi'))}] "
        f"({part.get(num, '?')}/{part.get(den, '?')})"
    )


def _row(row: GateRow) -> str | None:
    rec = row.record
    extra = rec.estimate.get("extra")
    if rec.metric != "judged_proportion" or not isinstance(extra, Mapping):
        return None
    observed, sens, spec = (_part(extra, k) for k in ("observed", "sensitivity", "specificity"))
    if observed is None or sens is None or spec is None:
        return None
    sym = "≤" if rec.direction == "le" else "≥"
    cells = [
        f"`{rec.gate}`",
        f"`{rec.subject}`",
        _rate(observed, "rate", "events", "n"),
        _rate(sens, "value", "true_pos", "positives"),
        _rate(spec, "value", "true_neg", "negatives"),
        f"{fmt_num(row.value)} [{fmt_num(row.lo)}, {fmt_num(row.hi)}]",
        f"{sym} {fmt_num(row.threshold)}",
        f"**{row.verdict}**",
    ]
    return "| " + " | ".join(cells) + " |"


def judged_table(rows: Sequence[GateRow]) -> list[str]:
    """Markdown lines for the judged gates among ``rows`` (empty when there are none)."""
    body = [line for line in (_row(r) for r in rows) if line is not None]
    if not body:
        return []
    first = next(r for r in rows if r.record.metric == "judged_proportion")
    extra = first.record.estimate.get("extra") or {}
    level = extra.get("component_alpha") if isinstance(extra, Mapping) else None
    note = (
        "_Judged gates: the observed rate is what the judge flagged (its Clopper–Pearson "
        "interval at the gate's level, as an uncorrected gate would use); sensitivity and "
        "specificity come from the held-out human-labelled set, with the Clopper–Pearson "
        f"bounds used in the correction (two-sided level {fmt_num(level)} each, i.e. α/2 per "
        "side); the corrected upper bound is observed bound ÷ sensitivity bound, the lower "
        "bound uses the specificity bound (docs/statistics.md, judged rates)._"
    )
    return ["#### Judged gates (judge-corrected rates)", "", *_HEADER, *body, "", note, ""]
