"""``harness data code-edit ingest|stats`` on the shipped fixtures; violations are counted."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.data.code_edit.cli import app
from harness.data.code_edit.store import schema_violations

FIX = Path(__file__).resolve().parents[4] / "fixtures" / "code_edit"


def test_ingest_then_stats(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["ingest", "canitedit", str(FIX / "canitedit.jsonl"), "--root", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["stats", "--root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["schema_violations"] == 0 and out["split_leakage"] == 0
    assert out["split_totals"] == {"train": 0, "dev": 0, "test": 1}
    shapes = out["shapes"]  # a test-only benchmark: counted, never a shape gap
    assert shapes["shape_gaps"] == [] and shapes["checked_sources"] == []
    assert sum(sum(v.values()) for v in shapes["shape_totals"].values()) == 1


def test_unknown_source_and_violations_counted(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "nope", "x"]).exit_code == 2
    runner.invoke(
        app, ["ingest", "canitedit", str(FIX / "canitedit.jsonl"), "--root", str(tmp_path)]
    )
    path = tmp_path / "test" / "canitedit.jsonl"
    row = json.loads(path.read_text())
    bad = [{**row, "instruction": ""}, {**row, "split": "train"}]
    path.write_text(path.read_text() + "".join(json.dumps(b) + "\n" for b in bad))
    problems = schema_violations(root=tmp_path)
    assert len(problems) == 2  # blank instruction; row under the wrong split dir
    assert any("canitedit.jsonl:2: field 'instruction'" in p for p in problems)
    assert any("canitedit.jsonl:3: field 'split'='train'" in p for p in problems)
    res = runner.invoke(app, ["stats", "--root", str(tmp_path)])
    assert res.exit_code == 1 and json.loads(res.output)["schema_violations"] == 2
