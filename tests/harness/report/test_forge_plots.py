"""Forge figures are written (PNG) and the lineage walks every ancestor once."""

from __future__ import annotations

from pathlib import Path

from harness.report.forge_plots import ancestors, plot_fitness_curve, plot_lineage

LINEAGE = {
    "m1": [[], "seed"], "m2": [[], "seed"], "m3": [[], "seed"],
    "m4": [["m1", "m2"], "linear+ties+dfs"], "m5": [["m4", "m3"], "slerp+dare+frankenmerge"],
    "m6": [["m2", "m3"], "linear+dare+dfs"],
}  # fmt: skip


def test_ancestors_depths() -> None:
    assert ancestors(LINEAGE, "m5") == {"m5": 2, "m4": 1, "m3": 0, "m1": 0, "m2": 0}


def test_plots_are_pngs(tmp_path: Path) -> None:
    hist = [
        {"generation": g, "best": 0.1 * g, "mean": 0.05 * g, "diversity": 0.4} for g in range(5)
    ]
    for p in (
        plot_fitness_curve(hist, tmp_path / "f.png"),
        plot_lineage(LINEAGE, "m5", tmp_path / "l.png", names={"m1": "reasoning"}),
    ):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
