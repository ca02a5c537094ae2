"""``harness cb-data`` keeps one command line after ``run`` moved out of the trainer CLI."""

from __future__ import annotations

from typer.testing import CliRunner

from harness.evaluators.cb_data_cli import app


def _names() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}


def test_data_commands_and_run_are_one_app() -> None:
    assert _names() == {"agentdojo", "asb", "check", "run"}
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "--source" in result.output


def test_trainer_cli_has_no_evaluator_command() -> None:
    from trainers.circuit_breaker.sources.cli import app as data_app

    assert "run" not in {c.name for c in data_app.registered_commands}


def test_run_writes_the_external_record(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``run`` end to end with the training replaced: the config it builds and the record."""
    import json

    import harness.evaluators.cb_data_cli as cli
    import trainers.circuit_breaker.pipeline as pipeline

    samples = tmp_path / "samples.jsonl"
    samples.write_text("{}\n", encoding="utf-8")
    seen: list[pipeline.PhaseRunConfig] = []

    def fake_run_phase(cfg, *, cache_dir, progress):  # type: ignore[no-untyped-def]
        seen.append(cfg)
        return pipeline.PhaseRun(
            config_digest=cfg.digest(), counts={"ds": 1}, format_problems=["x"], n_audited=2,
            ds_dropped=0, ds_candidates=1, model_digests={"cb": "m"}, data_digest="d",
            train_logs={}, results={}, wall_s={"train": 1.0}, sources={"s": {"rows": 1}},
        )  # fmt: skip

    class Breakdown:
        def to_dict(self) -> dict[str, str]:
            return {"gate3": "per source"}

        def markdown(self) -> str:
            return "| breakdown |"

    monkeypatch.setattr(pipeline, "run_phase", fake_run_phase)
    monkeypatch.setattr(cli, "source_breakdown", lambda run, gates_file: Breakdown())
    out = tmp_path / "out"
    args = ["run", "--source", str(samples), "--out", str(out), "--cache-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--max-length", "512"])
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert cfg.cb.max_length == 512 and [s.path for s in cfg.sources] == [str(samples)]
    record = json.loads((out / "cb-external.json").read_text(encoding="utf-8"))
    assert record["config_digest"] == cfg.digest() and record["format_problems"] == 1
    assert record["sources"] == {"s": {"rows": 1}} and record["wall_s"] == {"train": 1.0}
    assert record["breakdown"] == {"gate3": "per source"}
    assert record["phase_run_file"].endswith(f"cb-phase-{cfg.digest()[:12]}.json")
