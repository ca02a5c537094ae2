"""Per-layer bar panels and training curves are written as PNG files (atomically)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.layer_plots import plot_layer_stats, plot_training_curves


def test_layer_stats_and_curves_are_pngs(tmp_path: Path) -> None:
    layers = [
        {"name": "a", "ternary": True, "sparsity": 0.3, "scale": 0.02, "cosine": 0.9},
        {"name": "b", "ternary": False, "sparsity": 0.0, "scale": None, "cosine": 1.0},
    ]
    out = plot_layer_stats(layers, tmp_path / "sub" / "layers.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}, {"step": 2, "dev_metric": 0.5}]
    curves = plot_training_curves(log, tmp_path / "curves.png")
    assert curves.stat().st_size > 0
    with pytest.raises(ValueError, match="no layers"):
        plot_layer_stats([], tmp_path / "x.png")
