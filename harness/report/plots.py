"""One PNG per phase: each gate's estimate with its confidence bounds against the thresholds.

Gates of a phase live on different scales (a pass rate, a latency in seconds),
so each gate gets its own small panel with its own x axis; subjects (the model
and the controls) are rows inside the panel.  The Agg canvas is used directly
(no ``pyplot``), so plotting works on headless CI machines and inside xdist
controllers without touching the process's global matplotlib backend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.evidence import EvidenceRecord, atomic_write_bytes
from harness.report.summary import GateRow, summarize

__all__ = ["plot_phase", "plot_phases"]

_COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}
_TIER_STYLE = {"stretch": ":", "primary": "--", "fallback": "-."}


def _finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


def plot_phase(records: Sequence[EvidenceRecord], path: str | Path, *, phase: str) -> Path:
    """Draw ``phase``'s gates into ``path`` (written atomically) and return it."""
    rows = [r for s in summarize(records) if s.phase == phase for r in s.rows]
    gates = list(dict.fromkeys(r.record.gate for r in rows))
    if not gates:
        raise ValueError(f"no evidence for phase '{phase}'")
    per_gate: dict[str, list[GateRow]] = {g: [r for r in rows if r.record.gate == g] for g in gates}
    heights = [max(1, len(v)) * 0.45 + 0.9 for v in per_gate.values()]
    fig = Figure(figsize=(8.0, sum(heights)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(gates), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, gate in zip(axes[:, 0], gates, strict=True):
        _panel(ax, gate, per_gate[gate])
    fig.suptitle(f"phase {phase}: estimates with confidence bounds vs thresholds", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def _panel(ax: Axes, gate: str, rows: Sequence[GateRow]) -> None:
    labels: list[str] = []
    for i, row in enumerate(rows):
        rec = row.record
        color = _COLORS.get(str(row.effective_verdict), "black")
        value, lo, hi = row.value, row.lo, row.hi
        if _finite(value):
            left = value - lo if _finite(lo) else 0.0
            right = hi - value if _finite(hi) else 0.0
            ax.errorbar(
                [value],
                [i],
                xerr=[[max(left, 0.0)], [max(right, 0.0)]],
                fmt="o",
                color=color,
                capsize=4,
            )
        labels.append(f"{rec.subject} [{rec.lane}] {row.verdict_text()}")
    tiers = rows[0].record.spec.get("tiers") or {}
    for name, style in _TIER_STYLE.items():
        t = tiers.get(name)
        if t is not None:
            ax.axvline(float(t), linestyle=style, color="grey", linewidth=1, label=f"{name} {t:g}")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    rec0 = rows[0].record
    sym = "≥" if rec0.direction == "ge" else "≤"
    unit = f" [{rec0.unit}]" if rec0.unit else ""
    ax.set_title(f"{gate}: {rec0.metric}{unit} (pass if bound {sym} threshold)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if tiers:
        ax.legend(fontsize=6, loc="best")


def plot_phases(records: Sequence[EvidenceRecord], directory: str | Path) -> dict[str, str]:
    """One PNG per phase under ``directory``; returns phase → path relative to its parent."""
    directory = Path(directory)
    out: dict[str, str] = {}
    for phase in dict.fromkeys(r.phase for r in sorted(records, key=EvidenceRecord.sort_key)):
        path = plot_phase(records, directory / f"{phase}.png", phase=phase)
        out[phase] = f"{directory.name}/{path.name}"
    return out
