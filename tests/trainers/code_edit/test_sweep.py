"""The dev-split SRL sweep: resumable on a toy objective, decision rule, rendered table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import TrainerError
from trainers.code_edit.sweep import METRIC, Cell, grid, render_markdown, run_sweep, select

CONTEXT = {"stage1_digest": "s1", "train_digest": "tr", "dev_digest": "dv", "dev_steps": 3}


class _Toy:
    """A toy objective: reward peaks at temperature 0.3, lr 5e-4; counts its calls."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at

    def __call__(self, cell: Cell) -> dict[str, Any]:
        if cell.id == self.fail_at:
            raise KeyboardInterrupt  # the sweep dies mid-way (Ctrl-C, OOM kill, ...)
        self.calls.append(cell.id)
        t, lr = cell.knobs["temperature"], cell.knobs["learning_rate"]
        score = 1.0 - abs(t - 0.3) - abs(lr - 5e-4) * 100
        per_step = [score + d for d in (-0.01, 0.0, 0.01)]
        return {METRIC: score, "dev_exact": 0.0, "dev_parse": 1.0, "per_step": per_step}


def test_grid_ids_and_order() -> None:
    cells = grid([0.3, 0.5], [5e-4, 1e-3])
    assert [c.id for c in cells] == [
        "t0.3-lr0.0005",
        "t0.3-lr0.001",
        "t0.5-lr0.0005",
        "t0.5-lr0.001",
    ]
    assert cells[3].knobs == {"temperature": 0.5, "learning_rate": 1e-3}


def test_resumes_after_a_crash_and_recomputes_only_missing_cells(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    cells = grid([0.3, 0.2, 0.5], [5e-4, 1e-3])
    first = _Toy(fail_at=cells[3].id)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cells, first, out=out, context=CONTEXT, default_id=cells[0].id)
    assert first.calls == [c.id for c in cells[:3]]
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(saved["rows"]) == sorted(first.calls)  # every finished cell is on disk
    assert saved["selection"]["default"] == cells[0].id  # decided over the cells done so far
    second = _Toy()
    doc = run_sweep(cells, second, out=out, context=CONTEXT, default_id=cells[0].id)
    assert second.calls == [c.id for c in cells[3:]]
    assert list(doc["rows"]) == [c.id for c in cells]
    third = _Toy()
    run_sweep(cells, third, out=out, context=CONTEXT, default_id=cells[0].id)
    assert third.calls == []  # nothing left to do


def test_another_context_recomputes_everything(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    cells = grid([0.3, 0.5], [5e-4])
    run_sweep(cells, _Toy(), out=out, context=CONTEXT, default_id=cells[0].id)
    again = _Toy()
    changed = {**CONTEXT, "dev_digest": "other dev data"}
    run_sweep(cells, again, out=out, context=changed, default_id=cells[0].id)
    assert again.calls == [c.id for c in cells]


def _row(per_step: list[float]) -> dict[str, Any]:
    return {METRIC: sum(per_step) / len(per_step), "per_step": per_step}


def test_select_keeps_the_default_unless_the_paired_gain_is_significant() -> None:
    base = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    noisy = [0.3, 0.0, 0.5, 0.2, 0.7, 0.45]  # higher mean, inconsistent per step
    clear = [x + 0.2 + 0.01 * i for i, x in enumerate(base)]
    kept = select({"d": _row(base), "n": _row(noisy)}, "d")
    assert kept["best"] == "n" and kept["chosen"] == "d" and kept["p_value"] >= 0.05
    changed = select({"d": _row(base), "c": _row(clear)}, "d")
    assert changed["chosen"] == "c" and changed["p_value"] < 0.05
    assert changed["paired_gain"] == pytest.approx(0.225)
    shifted = select({"d": _row(base), "s": _row([x + 0.1 for x in base])}, "d")
    assert shifted["chosen"] == "s" and shifted["p_value"] == 0.0  # constant gain
    assert select({"d": _row(base)}, "d")["reason"].startswith("the default")
    with pytest.raises(TrainerError, match="default cell 'x'"):
        select({"d": _row(base)}, "x")


def test_render_marks_default_and_choice(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    cells = grid([0.3, 0.5], [5e-4])
    doc = run_sweep(
        cells,
        _Toy(),
        out=out,
        context=CONTEXT,
        default_id=cells[0].id,
        extra={"stage1_baseline": {METRIC: -0.1, "dev_exact": 0.0, "dev_parse": 0.5}},
    )
    text = render_markdown(doc)
    assert "| `t0.3-lr0.0005` (default) | 0.3 | 0.0005 | 1.000 |" in text
    assert "| Stage 1 (no SRL) | – | – | -0.100 |" in text
    assert "chosen `t0.3-lr0.0005`" in text
    assert json.loads(out.read_text(encoding="utf-8"))["stage1_baseline"][METRIC] == -0.1
