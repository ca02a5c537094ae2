"""`harness replay record` / `show` end to end on the tiny model (typer CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.backends.cli import app
from harness.backends.hf import HFGenerator
from harness.backends.replay import ReplayGenerator, load_requests


def test_record_then_replay_matches_the_real_backend(
    tiny_model_dir: Path, tmp_path: Path, hf_generator: HFGenerator
) -> None:
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text(
        "\n".join(
            json.dumps(
                {"request_id": f"r{i}", "prompt": f"def f{i}(x):", "sampling": {"max_tokens": 6}}
            )
            for i in range(3)
        )
        + "\n"
    )
    out = tmp_path / "rec.jsonl"
    runner = CliRunner()
    res = runner.invoke(
        app, ["record", "--model", str(tiny_model_dir), "--requests", str(reqs), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "3 recorded generations" in res.output
    replay = ReplayGenerator(out, model_name=tiny_model_dir.name)
    replayed = replay.generate(load_requests(reqs))
    real = hf_generator.generate(load_requests(reqs))
    assert [g.texts for g in replayed] == [g.texts for g in real]
    assert replay.identity == hf_generator.identity
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "3 generations" in shown.output


def test_record_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text('{"request_id": "a"}\n')
    res = CliRunner().invoke(
        app,
        [
            "record",
            "--model",
            str(tmp_path),
            "--requests",
            str(reqs),
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert res.exit_code == 2
    assert "reqs.jsonl:1" in res.output and "exactly one of messages" in res.output
