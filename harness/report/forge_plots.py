"""Forge figures: the EvoMerge fitness curve and the champion's lineage.

* :func:`plot_fitness_curve` — per generation, best and mean **selection** fitness
  (left axis) and population diversity (right axis, with the 0.3 line);
* :func:`plot_lineage` — the champion's ancestors back to the seed models: one node per
  individual at its depth (merges since the seeds), edges to its parents, labelled
  with the combo that made it.

Agg canvas, no ``pyplot``; files written atomically (like :mod:`harness.report.layer_plots`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.evidence import atomic_write_bytes

__all__ = ["ancestors", "plot_fitness_curve", "plot_lineage"]


def _save(fig: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def plot_fitness_curve(
    history: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    floor: float = 0.3,
    title: str = "EvoMerge: selection fitness and population diversity",
) -> Path:
    """Best/mean fitness and diversity against the generation."""
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    gens = [int(h["generation"]) for h in history]
    ax.plot(gens, [float(h["best"]) for h in history], label="best fitness", color="tab:blue")
    ax.plot(gens, [float(h["mean"]) for h in history], label="mean fitness", color="tab:cyan")
    ax.set_xlabel("generation")
    ax.set_ylabel("selection exact match")
    ax2 = ax.twinx()
    ax2.plot(gens, [float(h["diversity"]) for h in history], color="tab:orange",
             label="diversity")  # fmt: skip
    ax2.axhline(floor, color="tab:orange", linestyle=":", linewidth=1)
    ax2.set_ylabel("diversity (mean cosine distance)")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def ancestors(lineage: Mapping[str, Sequence[Any]], node: str) -> dict[str, int]:
    """Every ancestor of ``node`` (itself included) → depth (seeds 0, child 1 + max parent)."""
    depth: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in depth:
            parents = list(lineage[n][0]) if n in lineage else []
            depth[n] = 0 if not parents else 1 + max(visit(p) for p in parents)
        return depth[n]

    visit(node)
    return depth


def plot_lineage(
    lineage: Mapping[str, Sequence[Any]],
    champion: str,
    path: str | Path,
    *,
    names: Mapping[str, str] | None = None,
    title: str = "Champion lineage",
) -> Path:
    """Ancestor graph of ``champion`` (module doc); ``names`` relabels seed ids."""
    depth = ancestors(lineage, champion)
    by_depth: dict[int, list[str]] = {}
    for n, d in sorted(depth.items(), key=lambda kv: int(kv[0].lstrip("m") or 0)):
        by_depth.setdefault(d, []).append(n)
    pos = {n: (d, i - (len(ns) - 1) / 2) for d, ns in by_depth.items() for i, n in enumerate(ns)}
    width = max(6.0, 1.2 * (max(by_depth) + 1))
    height = max(3.0, 0.6 * max(len(v) for v in by_depth.values()))
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot(1, 1, 1)
    for n, (x, y) in pos.items():
        for p in lineage[n][0] if n in lineage else []:
            px, py = pos[p]
            ax.plot([px, x], [py, y], color="0.6", linewidth=0.8, zorder=1)
    for n, (x, y) in pos.items():
        label = str(lineage[n][1]) if n in lineage else ""
        text = (names or {}).get(n, n) if label == "seed" else f"{n}\n{label}"
        color = "tab:red" if n == champion else ("tab:green" if label == "seed" else "tab:blue")
        ax.scatter([x], [y], color=color, s=40, zorder=2)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=6)  # fmt: skip
    ax.set_xlabel("merges since the seed models")
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
