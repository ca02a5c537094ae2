"""The ``harness`` CLI: power planning, run (incl. exit 5), report, compare, sub-apps, errors."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest

from harness import cli
from harness.evidence import EvidenceStore
from harness.gate import Gate, GateOptions, InconclusiveMode
from harness.outcomes import Outcome
from harness.spec import PhaseSpec

GATES_YAML = """\
phase: demo
gates:
  - id: rate
    metric: proportion
    direction: ge
    tiers: {primary: 0.5}
"""

SUITE = """\
import pytest
from harness.outcomes import Outcome


@pytest.mark.phase("demo")
def test_rate(gate, harness_options):
    n = harness_options.limit or 100
    gate.check([Outcome(item_id=str(i), value=float(i % 10 != 0)) for i in range(n)])
"""


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    code = info.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def test_power_prints_2995_for_zero_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["power", "--threshold", "0.001", "--direction", "le"]) == 0
    out = capsys.readouterr().out
    assert "n needed with zero events (the best case): 2995" in out


def test_power_with_true_rates(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["power", "--threshold", "0.6", "--direction", "ge", "--true-rate", "0.7"]
    assert run_main([*args, "--true-rate", "0.6"]) == 0
    out = capsys.readouterr().out
    assert "zero failures" in out and "PASS" in out and "never" in out


def test_harness_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["power", "--threshold", "1.5", "--direction", "le"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --threshold 1.5: must lie in (0, 1)")
    assert "Traceback" not in err


def _project(tmp_path: Path) -> tuple[Path, Path]:
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "demo.yaml").write_text(GATES_YAML)
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_demo.py").write_text(SUITE)
    return gates, suites


def test_run_fails_loudly_when_nothing_is_collected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "suites"
    empty.mkdir()
    code = run_main(["run", "--suites", str(empty), "-n", "0", "--out", str(tmp_path / "o")])
    assert code == 5
    assert "pytest collected no tests" in capsys.readouterr().err


def test_run_missing_suites_dir_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["run", "--suites", str(tmp_path / "nope")]) == 2
    assert "suites directory not found" in capsys.readouterr().err


def test_run_out_that_cannot_be_a_directory_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "suites").mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    args = ["run", "--suites", str(tmp_path / "suites"), "--out", str(blocker)]
    assert run_main(args) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich may wrap
    assert f"--out {blocker}: cannot create the report directory" in err


def test_run_writes_the_report_directory(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    gates, suites = _project(tmp_path)
    out = tmp_path / "reports" / "run1"
    args = ["run", "--suites", str(suites), "--gates-dir", str(gates), "-n", "0"]
    code = run_main([*args, "--out", str(out), "--limit", "50", "--", "-p", "no:cacheprovider"])
    assert code == 0
    for name in ("gate-report.md", "junit.xml", "evidence.jsonl", "plots/demo.png"):
        assert (out / name).exists(), name
    stdout, stderr = capfd.readouterr()
    assert "--limit 50" in stdout  # the pytest command line is shown
    # the pytest child's per-phase progress reaches the user on stderr
    assert "gate-harness: phase demo started (1 test)" in stderr
    assert "gate-harness: phase demo finished in " in stderr and "1 test: 1 PASS" in stderr
    assert "demo — model (real lane)" in stdout and "PASS" in stdout
    assert "n=50" in (out / "gate-report.md").read_text()
    assert not (tmp_path / "reports" / "latest").exists()  # only default runs move 'latest'


def _evidence(directory: Path, k: int) -> Path:
    phase = PhaseSpec.model_validate(
        {
            "phase": "demo",
            "gates": [
                {"id": "rate", "metric": "proportion", "direction": "ge", "tiers": {"primary": 0.5}}
            ],
        }
    )
    gate = Gate(
        phase,
        phase.gates[0],
        options=GateOptions(evidence_dir=directory, inconclusive=InconclusiveMode.PASS),
    )
    # a FAIL verdict fails the (absent) test; the record is what we want
    with contextlib.suppress(pytest.fail.Exception):
        gate.check([Outcome(item_id=str(i), value=float(i < k)) for i in range(100)])
    assert gate.last_record is not None
    EvidenceStore(directory).rewrite([gate.last_record])
    return directory / "evidence.jsonl"


def test_report_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _evidence(tmp_path / "base", 60)
    cur = _evidence(tmp_path / "cur", 75)
    assert run_main(["report", str(cur), "--no-plots"]) == 0
    assert (tmp_path / "cur" / "gate-report.md").exists()
    assert "demo — model (real lane)" in capsys.readouterr().out
    md = tmp_path / "delta.md"
    assert run_main(["compare", str(base), str(cur), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "+0.15" in out
    assert "| 0.6 | 0.75 | +0.15 |" in md.read_text()


def test_report_on_torn_evidence_warns_and_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _evidence(tmp_path / "run", 60)
    with path.open("a") as fh:
        fh.write('{"schema_version": 1, "phase": "de')
    assert run_main(["report", str(path), "--no-plots"]) == 0
    assert "last line is incomplete" in capsys.readouterr().err


def test_subapps_mount_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good_sub.py").write_text(
        textwrap.dedent(
            """
            import typer
            app = typer.Typer()

            @app.command()
            def hello(name: str = "x") -> None:
                print(f"hello {name}")

            @app.command()
            def other() -> None:
                pass
            """
        )
    )
    (tmp_path / "broken_sub.py").write_text("raise RuntimeError('bug inside the sub-app')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        cli,
        "SUBAPPS",
        (
            cli.SubApp("good", "good_sub", ("app",), "good one"),
            cli.SubApp("broken", "broken_sub", ("app",), "broken one"),
            cli.SubApp("absent", "no_such_module_xyz.cli", ("app",), "not installed"),
        ),
    )
    assert run_main(["good", "hello", "--name", "gate"]) == 0
    assert "hello gate" in capsys.readouterr().out
    assert run_main(["broken"]) == 2
    err = capsys.readouterr().err
    assert "importing broken_sub failed with RuntimeError: bug inside the sub-app" in err
    assert run_main(["absent"]) == 2
    assert "unavailable" in capsys.readouterr().err
    assert run_main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert "good" in listing and "broken" in listing and "absent" not in listing


def _account_file(tmp_path: Path, *statuses: str) -> Path:
    from harness.accounting import FinalStatus, GateStatus, PhaseAccount, RunAccount

    phase = PhaseAccount(
        phase="p",
        declared=[f"g{i}" for i in range(len(statuses))],
        statuses=[
            GateStatus(phase="p", gate=f"g{i}", status=FinalStatus(s))
            for i, s in enumerate(statuses)
        ],
    )
    path = tmp_path / "gate-accounting.json"
    path.write_text(RunAccount(phases=[phase]).model_dump_json())
    return path


def test_exit_codes_tell_verdicts_from_harness_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdicts = _account_file(tmp_path, "FAIL", "INCONCLUSIVE", "PASS")
    assert cli.run_exit_code(1, verdicts) == 1
    assert cli.run_exit_code(1, verdicts, fail_on_verdict=False) == 0
    missing = _account_file(tmp_path, "PASS", "MISSING")
    assert cli.run_exit_code(1, missing) == 1
    # the plugin already turned a control mismatch / double check into 2
    assert cli.run_exit_code(2, verdicts, fail_on_verdict=False) == 2
    passed = _account_file(tmp_path, "PASS")
    assert cli.run_exit_code(1, passed) == 2  # a test broke outside any gate decision
    assert "outside any gate decision" in capsys.readouterr().err
    assert cli.run_exit_code(1, tmp_path / "absent.json") == 2
    assert cli.run_exit_code(0, passed) == 0 and cli.run_exit_code(5, passed) == 5
    assert cli.run_exit_code(3, passed) == 2


def test_run_progress_flag_reaches_pytest(tmp_path: Path) -> None:
    def args(**progress: bool) -> list[str]:
        return cli.pytest_args(
            suites=Path("suites"),
            out_dir=tmp_path,
            phases=[],
            workers="0",
            limit=None,
            lane="real",
            model=None,
            gates_dir=None,
            baseline=None,
            inconclusive="fail",
            sequential=False,
            extra=[],
            **progress,
        )

    assert "--no-gate-progress" not in args()
    assert "--no-gate-progress" not in args(progress=True)
    assert "--no-gate-progress" in args(progress=False)


def test_run_no_cache_reaches_pytest(tmp_path: Path) -> None:
    def args(**flags: bool) -> list[str]:
        return cli.pytest_args(
            suites=Path("suites"),
            out_dir=tmp_path,
            phases=[],
            workers="0",
            limit=None,
            lane="real",
            model=None,
            gates_dir=None,
            baseline=None,
            inconclusive="fail",
            sequential=False,
            extra=[],
            **flags,
        )

    assert "--no-cache" not in args()
    assert "--no-cache" in args(no_cache=True)


def test_report_out_file_md_writes_that_file(tmp_path: Path) -> None:
    cur = _evidence(tmp_path / "cur", 75)
    target = tmp_path / "pr" / "FILE.md"
    assert run_main(["report", str(cur), "--no-plots", "--out", str(target)]) == 0
    assert target.is_file()  # a file, not a directory named FILE.md
    assert target.read_text().startswith("# Gate report")


def test_compare_fail_on_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _evidence(tmp_path / "good", 75)  # PASS (≥ 0.5)
    bad = _evidence(tmp_path / "bad", 40)  # FAIL
    assert run_main(["compare", str(good), str(bad)]) == 0  # only reports without the flag
    out = capsys.readouterr().out
    assert "PASS → FAIL" in out and "regression: demo/rate (model): verdict PASS → FAIL" in out
    assert run_main(["compare", str(good), str(bad), "--fail-on-regression"]) == 1
    assert run_main(["compare", str(bad), str(good), "--fail-on-regression"]) == 0


def test_power_takes_a_gate_from_the_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "demo.yaml").write_text(
        GATES_YAML
        + "  - id: slip\n    metric: proportion\n    direction: le\n    tiers: {primary: 0.001}\n"
    )
    assert run_main(["power", "--gate", "demo/slip", "--gates-dir", str(gates)]) == 0
    out = capsys.readouterr().out
    assert "α/m = 0.05/2 = 0.025" in out
    # zero events at one-sided α/m = 0.025: (1 − 0.001)^n ≤ 0.025 → n = 3,688
    assert "(the best case): 3688" in out
    assert run_main(["power", "--gate", "nope", "--gates-dir", str(gates)]) == 2
