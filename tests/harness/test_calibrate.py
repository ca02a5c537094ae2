import json

import pytest
from typer.testing import CliRunner

from harness.calibrate import FAMILIES, CalibrationTable, app, run_calibration
from harness.errors import StatsError


@pytest.fixture(scope="module")
def reduced() -> CalibrationTable:
    return run_calibration(reps=100, seed=0, small=True)


def test_reduced_calibration_keeps_alpha_and_coverage(reduced: CalibrationTable) -> None:
    families = {r.family.split(" ")[0] for r in reduced.rows}
    assert families == set(FAMILIES)
    for row in reduced.rows:
        assert row.false_pass_ok, row
        assert row.coverage_ok, row
    assert reduced.ok
    seq = next(r for r in reduced.rows if r.family == "sequential")
    assert 0 < seq.extra["mean_fraction_used"] < 1


def test_table_renders(reduced: CalibrationTable) -> None:
    md = reduced.to_markdown()
    assert md.count("\n") == len(reduced.rows) + 1 and "Clopper–Pearson exact" in md
    assert json.loads(json.dumps(reduced.to_dict()))["reps"] == 100


def test_deterministic_given_seed() -> None:
    a = run_calibration(reps=20, seed=3, families=["proportion"], small=True)
    b = run_calibration(reps=20, seed=3, families=["proportion"], small=True)
    assert a.to_dict() == b.to_dict()


def test_bad_arguments() -> None:
    with pytest.raises(StatsError, match=r"unknown calibration family nope"):
        run_calibration(reps=100, seed=0, families=["nope"])
    with pytest.raises(StatsError, match=r"too few"):
        run_calibration(reps=5, seed=0)


def test_cli_prints_table() -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["--reps", "20", "--family", "quantile", "--small"], env={"COLUMNS": "250"}
    )
    assert res.exit_code == 0, res.output
    assert "quantile" in res.output and "calibration" in res.output
    res = runner.invoke(app, ["--reps", "20", "--family", "proportion", "--small", "--markdown"])
    assert res.exit_code == 0 and res.output.startswith("| family |")


@pytest.mark.slow
def test_full_calibration() -> None:
    table = run_calibration(reps=1000, seed=1)
    assert table.ok, table.to_markdown()
