"""Every declared gate accounted for: MISSING gates and exit codes from the evidence.

Each test runs a small synthetic phase through the plugin with pytester, at
``-n 0`` (in-process) and ``-n 2`` (xdist in a subprocess), and asserts what the
run *says* (exit code, terminal, report, JUnit) — not only that it ran.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# imported before pytester snapshots sys.modules (see test_plugin.py)
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer
from harness.accounting import FinalStatus, ItemFate, account_run
from harness.report.accounting import account_markdown
from harness.spec import PhaseSpec

assert harness.gate and harness.report.plots and harness.report.terminal and harness.report.writer

PHASE_YAML = """\
phase: ranker
alpha: 0.05
multiplicity: holm
gates:
  - id: accuracy
    metric: proportion
    direction: ge
    tiers: {primary: 0.6}
  - id: latency_p95
    metric: quantile
    params: {q: 0.95}
    direction: le
    tiers: {primary: 0.5}
  - id: uplift
    metric: proportion
    direction: ge
    tiers: {primary: 0.5}
"""

HELPERS = """\
import pytest
from harness.outcomes import Outcome


def outcomes(k, n):
    return [Outcome(item_id=f"item-{i:04d}", value=1.0 if i < k else 0.0) for i in range(n)]


def latencies(n, seconds):
    return [Outcome(item_id=f"req-{i:04d}", value=seconds) for i in range(n)]

"""

ALL_GATES = """
@pytest.mark.phase("ranker")
@pytest.mark.gate("latency_p95")
def test_latency(gate):
    gate.check(latencies(200, 0.1))


@pytest.mark.phase("ranker")
@pytest.mark.gate("uplift")
def test_uplift(gate):
    gate.check(outcomes(95, 100))
"""

ACCURACY_PASSES = """
@pytest.mark.phase("ranker")
@pytest.mark.gate("accuracy")
def test_accuracy(gate):
    gate.check(outcomes(95, 100))
"""

WORKERS = ["0", "2"]


def _run(
    pytester: pytest.Pytester,
    workers: str,
    body: str,
    *args: str,
    more_yaml: dict[str, str] | None = None,
) -> pytest.RunResult:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "ranker.yaml").write_text(PHASE_YAML, encoding="utf-8")
    for name, text in (more_yaml or {}).items():
        (pytester.path / "gates" / f"{name}.yaml").write_text(text, encoding="utf-8")
    pytester.makepyfile(test_ranker=HELPERS + body)
    out = pytester.path / "ev"
    full = ("-n", workers, "--evidence-dir", str(out), "--junitxml", str(out / "junit.xml"), *args)
    if workers == "0":
        return pytester.runpytest(*full)
    return pytester.runpytest_subprocess(*full)


def _account(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (pytester.path / "ev" / "gate-accounting.json").read_text(encoding="utf-8")
    )
    return data


def _missing(pytester: pytest.Pytester) -> dict[str, str]:
    acc = _account(pytester)
    return {
        s["gate"]: s["reason"]
        for p in acc["phases"]  # type: ignore[attr-defined]
        for s in p["statuses"]
        if s["status"] == "MISSING"
    }


def _junit_final(pytester: pytest.Pytester) -> dict[str, str]:
    root = ET.parse(pytester.path / "ev" / "junit.xml").getroot()
    out: dict[str, str] = {}
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "gate.final_verdict" in props:
            out[str(props["gate.id"])] = str(props["gate.final_verdict"])
    return out


@pytest.mark.parametrize("workers", WORKERS)
def test_gates_without_a_test_are_missing_and_fail_the_run(
    pytester: pytest.Pytester, workers: str
) -> None:
    result = _run(pytester, workers, ACCURACY_PASSES)
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    missing = _missing(pytester)
    assert set(missing) == {"latency_p95", "uplift"}
    assert "no collected test decides this gate" in missing["uplift"]
    result.stdout.fnmatch_lines(["*phase ranker: NOT passed*MISSING: latency_p95, uplift*"])
    report = (pytester.path / "ev" / "gate-report.md").read_text(encoding="utf-8")
    assert "| ranker | uplift | **MISSING** |" in report
    assert _junit_final(pytester) == {
        "accuracy": "PASS",
        "latency_p95": "MISSING",
        "uplift": "MISSING",
    }


@pytest.mark.parametrize("workers", WORKERS)
def test_a_skipped_gate_test_is_missing_with_its_reason(
    pytester: pytest.Pytester, workers: str
) -> None:
    body = ACCURACY_PASSES + ALL_GATES.replace(
        "    gate.check(latencies(200, 0.1))", "    pytest.skip('every generation came from cache')"
    )
    result = _run(pytester, workers, body)
    result.assert_outcomes(passed=2, skipped=1)
    assert result.ret == 1
    assert _missing(pytester) == {"latency_p95": "skipped: every generation came from cache"}


@pytest.mark.parametrize("workers", WORKERS)
def test_a_fixture_failure_is_missing(pytester: pytest.Pytester, workers: str) -> None:
    body = (
        ACCURACY_PASSES
        + ALL_GATES.replace("def test_uplift(gate):", "def test_uplift(gate, broken):")
        + "\n\n@pytest.fixture\ndef broken():\n    raise RuntimeError('model server down')\n"
    )
    result = _run(pytester, workers, body)
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == 1
    reason = _missing(pytester)["uplift"]
    assert reason.startswith("fixture failure before the test ran:") and "server down" in reason


@pytest.mark.parametrize("workers", WORKERS)
def test_all_gates_decided_and_passing_exits_0(pytester: pytest.Pytester, workers: str) -> None:
    result = _run(pytester, workers, ACCURACY_PASSES + ALL_GATES)
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert _missing(pytester) == {}
    result.stdout.fnmatch_lines(["*phase ranker: passed — 3 declared gate(s)*3 PASS*"])


@pytest.mark.parametrize("workers", WORKERS)
def test_a_swallowed_fail_still_exits_1(pytester: pytest.Pytester, workers: str) -> None:
    body = (
        ALL_GATES
        + """
@pytest.mark.phase("ranker")
@pytest.mark.gate("accuracy")
def test_accuracy(gate):
    try:
        gate.check(outcomes(10, 100))
    except BaseException:
        pass
"""
    )
    result = _run(pytester, workers, body)
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*phase ranker: NOT passed*1 FAIL*"])


@pytest.mark.parametrize("workers", WORKERS)
def test_checking_twice_is_a_harness_error_naming_both_call_sites(
    pytester: pytest.Pytester, workers: str
) -> None:
    body = (
        ALL_GATES
        + """
@pytest.mark.phase("ranker")
@pytest.mark.gate("accuracy")
def test_accuracy(gate):
    gate.check(outcomes(200, 250))
    gate.check(outcomes(240, 250))
"""
    )
    result = _run(pytester, workers, body)
    assert result.ret == 2
    text = result.stdout.str()
    assert "gate 'ranker/accuracy' was checked twice for subject 'model'" in text
    lines = (pytester.path / "test_ranker.py").read_text().splitlines()
    first = lines.index("    gate.check(outcomes(200, 250))") + 1
    assert f"test_ranker.py:{first}" in text and f"test_ranker.py:{first + 1}" in text


@pytest.mark.parametrize("workers", WORKERS)
def test_two_tests_checking_one_gate_are_a_harness_error(
    pytester: pytest.Pytester, workers: str
) -> None:
    body = (
        ALL_GATES
        + ACCURACY_PASSES
        + ACCURACY_PASSES.replace("def test_accuracy", "def test_accuracy_again").replace(
            "(95, 100)", "(40, 100)"
        )
    )
    result = _run(pytester, workers, body)
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*gate 'ranker/accuracy' was checked twice*first at*again at*"])
    recs = (pytester.path / "ev" / "evidence.jsonl").read_text().splitlines()
    assert sum('"gate":"accuracy"' in r for r in recs) == 1  # only one decision is kept
    assert "accuracy" not in _missing(pytester)  # decided once; the second test is the error


SEQUENTIAL_YAML = PHASE_YAML.replace(
    "    tiers: {primary: 0.6}\n", "    tiers: {primary: 0.6}\n    sequential: true\n", 1
)


@pytest.mark.parametrize("workers", WORKERS)
def test_a_sequential_gate_decides_on_its_final_look(
    pytester: pytest.Pytester, workers: str
) -> None:
    body = (
        ALL_GATES
        + """
@pytest.mark.phase("ranker")
@pytest.mark.gate("accuracy")
def test_accuracy(gate):
    monitor = gate.sequential()
    for look in range(3):
        monitor.update([1.0] * 100)
        decision = gate.check(outcomes(100 * (look + 1), 100 * (look + 1)),
                              estimate=monitor.estimate())
    assert decision.verdict == "PASS"
"""
    )
    pytester.mkdir("gates")
    (pytester.path / "gates" / "ranker.yaml").write_text(SEQUENTIAL_YAML, encoding="utf-8")
    pytester.makepyfile(test_ranker=HELPERS + body)
    out = pytester.path / "ev"
    run = pytester.runpytest if workers == "0" else pytester.runpytest_subprocess
    result = run("-n", workers, "--evidence-dir", str(out))
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    recs = [json.loads(r) for r in (out / "evidence.jsonl").read_text().splitlines()]
    (acc,) = [r for r in recs if r["gate"] == "accuracy"]
    assert acc["estimate"]["n"] == 300  # the final look decided


@pytest.mark.parametrize("workers", WORKERS)
def test_a_test_that_never_checks_errors_and_the_gate_is_missing(
    pytester: pytest.Pytester, workers: str
) -> None:
    body = (
        ALL_GATES
        + """
@pytest.mark.phase("ranker")
@pytest.mark.gate("accuracy")
def test_accuracy(gate):
    assert gate.id == "accuracy"
"""
    )
    result = _run(pytester, workers, body)
    result.assert_outcomes(passed=3, errors=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*never called gate.check*"])
    assert "never called gate.check" in _missing(pytester)["accuracy"]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("mode", ["pass", "xfail"])
def test_inconclusive_display_mode_does_not_change_the_exit_code(
    pytester: pytest.Pytester, workers: str, mode: str
) -> None:
    body = ALL_GATES + ACCURACY_PASSES.replace("(95, 100)", "(6, 10)")
    result = _run(pytester, workers, body, "--inconclusive", mode)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*phase ranker: NOT passed*1 INCONCLUSIVE*"])


@pytest.mark.parametrize("workers", WORKERS)
def test_deselected_gates_are_not_asked_for(pytester: pytest.Pytester, workers: str) -> None:
    result = _run(pytester, workers, ACCURACY_PASSES + ALL_GATES, "-k", "not latency")
    result.assert_outcomes(passed=2)  # xdist's controller does not count deselected items
    # every gate that ran PASSed, but a partial phase is not a phase PASS
    assert result.ret == 1
    acc = _account(pytester)
    assert acc["phases"][0]["not_asked"] == ["latency_p95"]  # type: ignore[index]
    assert not _missing(pytester)  # deselected on purpose: not MISSING
    result.stdout.fnmatch_lines(
        ["*phase ranker: NOT passed*not asked for (deselected): latency_p95*not a phase PASS*"]
    )


@pytest.mark.parametrize("workers", WORKERS)
def test_a_phase_left_out_by_phase_is_not_selected(pytester: pytest.Pytester, workers: str) -> None:
    other = '\n@pytest.mark.phase("other")\ndef test_other(gate):\n    pass\n'
    other_yaml = (
        "phase: other\ngates:\n  - id: g\n    metric: proportion\n    direction: ge\n"
        "    tiers: {primary: 0.5}\n"
    )
    body = ACCURACY_PASSES + ALL_GATES + other
    result = _run(pytester, workers, body, "--phase", "ranker", more_yaml={"other": other_yaml})
    assert result.ret == 0, result.stdout.str()
    assert _account(pytester)["not_asked_phases"] == ["other"]


@pytest.mark.parametrize("workers", WORKERS)
def test_a_control_may_make_no_claim(pytester: pytest.Pytester, workers: str) -> None:
    body = (
        ACCURACY_PASSES
        + ALL_GATES
        + """
@pytest.mark.phase("ranker")
@pytest.mark.gate("latency_p95")
def test_latency_control(gate):
    gate.no_claim("latency of a canned oracle is not ground truth", subject="oracle")
"""
    )
    result = _run(pytester, workers, body)
    result.assert_outcomes(passed=3, skipped=1)
    assert result.ret == 0
    # the skip is not silent: the account (and the report's accounting section) lists it
    (claim,) = _account(pytester)["phases"][0]["no_claims"]  # type: ignore[index]
    assert claim["gate"] == "latency_p95" and "not ground truth" in claim["reason"]


def test_a_phase_of_only_non_gate_tests_keeps_pytests_code(pytester: pytest.Pytester) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "ranker.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_unit="def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    assert result.ret == 0
    assert "phase ranker" not in result.stdout.str()


# ---------------------------------------------------------------------- account_run unit


def _spec() -> PhaseSpec:
    import yaml

    return PhaseSpec.model_validate(yaml.safe_load(PHASE_YAML))


def test_account_names_the_reason_for_each_missing_gate() -> None:
    fates = [
        ItemFate(nodeid="t.py::a", phase="ranker", gate="accuracy", problem="skipped: cache"),
        ItemFate(nodeid="t.py::c", phase="ranker", gate="latency_p95", no_claim="oracle"),
    ]
    acc = account_run(
        [_spec()],
        selected=["ranker"],
        records=[],
        items=fates,
        deselected={"t.py::u": ("ranker", "uplift")},
    )
    (phase,) = acc.phases
    statuses = {s.gate: s for s in phase.statuses}
    assert statuses["accuracy"].status is FinalStatus.MISSING
    assert statuses["accuracy"].reason == "skipped: cache"
    assert "only control subjects" in statuses["latency_p95"].reason
    assert phase.not_asked == ["uplift"]
    assert [(c.gate, c.reason) for c in phase.no_claims] == [("latency_p95", "oracle")]
    text = "\n".join(account_markdown(acc))
    assert "skipped on purpose" in text and "| ranker | latency_p95 | t.py::c | oracle |" in text
    assert not phase.passed and acc.exit_code(0) == 1
    assert acc.exit_code(5) == 5  # nothing collected stays 5


def test_unselected_phases_do_not_count() -> None:
    acc = account_run([_spec()], selected=[], records=[], items=[])
    assert acc.phases == [] and acc.exit_code(0) == 0 and acc.exit_code(1) == 1


def test_harness_errors_exit_2(tmp_path: Path) -> None:
    acc = account_run([_spec()], selected=[], records=[], items=[], harness_errors=["boom"])
    assert acc.exit_code(0) == 2 and acc.exit_code(1) == 2


@pytest.mark.parametrize("workers", WORKERS)
def test_evidence_names_the_users_repo_and_the_harness_separately(
    pytester: pytest.Pytester, workers: str
) -> None:
    import subprocess

    pytester.mkdir("gates")
    (pytester.path / "gates" / "ranker.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_ranker=HELPERS + ACCURACY_PASSES + ALL_GATES)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "gates", "test_ranker.py"], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], cwd=pytester.path, check=True, capture_output=True)
    head = (
        subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=pytester.path, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    out = pytester.path / "ev"
    run = pytester.runpytest if workers == "0" else pytester.runpytest_subprocess
    assert run("-n", workers, "--evidence-dir", str(out)).ret == 0
    recs = [json.loads(r) for r in (out / "evidence.jsonl").read_text().splitlines()]
    assert {r["digests"]["code"] for r in recs} == {f"git:{head}"}
    assert all(r["digests"]["harness"].startswith("gate-harness ") for r in recs)
