"""Figures a phase attaches to its gate details: per-layer bars and training curves.

Phases whose subject is *made* by a training run (compression) show how it was
made next to the verdict: per-layer statistics (sparsity, scale, output
cosine) as bar panels, and the loss / dev-metric curves against the step.
Like :mod:`harness.report.plots`, the Agg canvas is used directly (no
``pyplot``) and files are written atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.evidence import atomic_write_bytes

__all__ = ["plot_layer_stats", "plot_training_curves"]


def _save(fig: Figure, path: str | Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def plot_layer_stats(
    layers: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    keys: Sequence[str] = ("sparsity", "scale", "cosine"),
    title: str = "per-layer statistics",
) -> Path:
    """One bar panel per key, one bar per layer (grey bars: layers flagged ``ternary: false``)."""
    if not layers:
        raise ValueError("plot_layer_stats: no layers")
    names = [str(layer["name"]) for layer in layers]
    fig = Figure(figsize=(max(6.0, 0.35 * len(names) + 2), 2.2 * len(keys) + 1.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys, strict=True):
        values = [
            float(v) if isinstance(v := layer.get(key), int | float) else math.nan
            for layer in layers
        ]
        colors = ["#0969da" if layer.get("ternary", True) else "#8c959f" for layer in layers]
        ax.bar(range(len(names)), [0.0 if math.isnan(v) else v for v in values], color=colors)
        ax.set_ylabel(key)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names if ax is axes[-1] else [], rotation=70, fontsize=6, ha="right")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_training_curves(
    log: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    keys: Sequence[str] = ("loss", "dev_metric"),
    title: str = "training curves",
) -> Path:
    """One panel per key: the value against ``step`` for every log row that has it."""
    fig = Figure(figsize=(7.0, 2.2 * len(keys) + 0.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, squeeze=False, sharex=True)[:, 0]
    for ax, key in zip(axes, keys, strict=True):
        rows = [r for r in log if isinstance(r.get(key), int | float)]
        ax.plot(
            [r["step"] for r in rows], [r[key] for r in rows], marker="." if len(rows) < 40 else ""
        )
        ax.set_ylabel(key)
    axes[-1].set_xlabel("step")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
