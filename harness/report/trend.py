"""Render nightly trends (:mod:`harness.trend`): a markdown table and one PNG.

Rendering only: the series, verdicts and flags come from :func:`harness.trend.build_trends`.
The PNG has one panel per gate (its own y scale): the estimate per night with
its confidence bounds as error bars, coloured by the night's final verdict,
the tier thresholds as horizontal lines and a red ring on every flagged night.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.evidence import atomic_write_bytes, atomic_write_text
from harness.report.summary import fmt_num
from harness.trend import Night, Series

__all__ = ["plot_trends", "render_trend_markdown", "write_trend"]

_COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}
_TIER_STYLE = {"stretch": ":", "primary": "--", "fallback": "-."}


def render_trend_markdown(
    series: Sequence[Series], nights: Sequence[Night], *, plot: str | None
) -> str:
    """Per gate: night, estimate, bounds, n, final verdict, flags; then the flag list."""
    lines = [
        "# Gate trends",
        "",
        f"{len(nights)} night(s): " + ", ".join(f"`{n.label}`" for n in nights) + ".",
        "Bounds are each gate's own (each side one-sided at its α/m); verdicts are final "
        "(after the phase's Holm/BH step). Flags compare a night with the previous night "
        "that decided the gate (docs/scaling.md).",
        "",
    ]
    if plot:
        lines += [f"![gate trends]({plot})", ""]
    flagged = [(s, p) for s in series for p in s.points if p.flags]
    lines.append(f"**{len(flagged)} flagged gate-night(s)**" + (":" if flagged else "."))
    for s, p in flagged:
        for f in p.flags:
            lines.append(f"- {s.label} on `{p.night}` — {f.kind}: {f.text}")
    lines.append("")
    for s in series:
        sym = "≥" if s.direction == "ge" else "≤"
        need = ", ".join(f"{sym} {v:g} {k}" for k, v in s.thresholds.items())
        lines += [f"## {s.label}", "", f"metric `{s.metric}`, needs {need or '—'}", ""]
        lines += [
            "| night | estimate | lo | hi | n | verdict | flag |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in s.points:
            flag = "; ".join(f"{f.kind}: {f.text}" for f in p.flags) or ""
            cells = [
                p.night,
                fmt_num(p.value),
                fmt_num(p.lo),
                fmt_num(p.hi),
                "—" if p.n is None else str(p.n),
                p.verdict,
                ("⚠ " + flag) if flag else "",
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_trends(series: Sequence[Series], path: Path) -> Path:
    """Draw every series into ``path`` (written atomically)."""
    if not series:
        raise ValueError("no gate series to plot")
    fig = Figure(figsize=(8.0, 2.1 * len(series) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(series), 1, squeeze=False)
    for ax, s in zip(axes[:, 0], series, strict=True):
        xs = list(range(len(s.points)))
        for x, p in zip(xs, s.points, strict=True):
            if math.isnan(p.value):
                continue
            lo = p.value - p.lo if not math.isnan(p.lo) else 0.0
            hi = p.hi - p.value if not math.isnan(p.hi) else 0.0
            ax.errorbar(
                [x],
                [p.value],
                yerr=[[max(lo, 0.0)], [max(hi, 0.0)]],
                fmt="o",
                capsize=4,
                color=_COLORS.get(p.verdict, "black"),
            )
            if p.flags:
                ax.plot([x], [p.value], "o", ms=14, mfc="none", mec="#cf222e", mew=1.5)
        values = [p.value for p in s.points if not math.isnan(p.value)]
        if len(values) > 1:
            ax.plot(
                [x for x, p in zip(xs, s.points, strict=True) if not math.isnan(p.value)],
                values,
                color="grey",
                linewidth=0.8,
            )
        for name, style in _TIER_STYLE.items():
            if name in s.thresholds:
                t = s.thresholds[name]
                ax.axhline(t, linestyle=style, color="grey", linewidth=1, label=f"{name} {t:g}")
        ax.set_xticks(xs, [p.night for p in s.points], fontsize=6, rotation=20)
        ax.set_title(s.label, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if s.thresholds:
            ax.legend(fontsize=6, loc="best")
    fig.suptitle("gate estimates per night (bounds; colour = verdict; ring = flag)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def write_trend(
    series: Sequence[Series], nights: Sequence[Night], out: Path, *, plot: bool = True
) -> tuple[Path, Path | None]:
    """``out/trend.md`` (+ ``out/trend.png``); returns both paths."""
    png = plot_trends(series, out / "trend.png") if plot and series else None
    md = render_trend_markdown(series, nights, plot=png.name if png is not None else None)
    return atomic_write_text(out / "trend.md", md), png
