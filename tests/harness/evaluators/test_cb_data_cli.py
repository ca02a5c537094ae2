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
