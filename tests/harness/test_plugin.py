"""The pytest plugin end to end on a small synthetic phase, run by ``pytester``.

The phase has real outcomes chosen so each verdict occurs: ``good`` PASSes,
``bad`` FAILs, ``unsure`` is INCONCLUSIVE (0 events in 300 can't show ≤ 0.1 %),
and two control subjects check that the gates can both pass and fail.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

# Import everything a gate check touches *before* pytester snapshots sys.modules: an
# in-process run would otherwise import a second copy of harness.outcomes, and its
# Outcome objects would not be instances of the class harness.metrics checks for.
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer
from harness.report.junit import read_gate_properties

assert harness.gate and harness.report.plots and harness.report.terminal and harness.report.writer

PHASE_YAML = """\
phase: demo
alpha: 0.05
multiplicity: holm
gates:
  - id: good
    metric: proportion
    direction: ge
    tiers: {primary: 0.6, fallback: 0.5}
  - id: bad
    metric: proportion
    direction: ge
    tiers: {primary: 0.6}
  - id: unsure
    metric: proportion
    direction: le
    tiers: {primary: 0.001}
"""

TEST_FILE = """\
import pytest
from harness.outcomes import Outcome

# successes out of n per gate: real 0/1 outcomes, not canned verdicts
RATES = {"good": (92, 100), "bad": (30, 100), "unsure": (0, 300)}


def outcomes(k, n):
    return [Outcome(item_id=f"item-{i:04d}", value=1.0 if i < k else 0.0) for i in range(n)]


@pytest.mark.phase("demo")
def test_model(gate):
    gate.check(outcomes(*RATES[gate.id]), model_digest="sha256:model", data_digest="sha256:data")


@pytest.mark.phase("demo")
@pytest.mark.gate("good")
@pytest.mark.parametrize("subject,k,expect", [("oracle", 100, "PASS"), ("mutant", 20, "FAIL")])
def test_control(gate, subject, k, expect):
    gate.check(outcomes(k, 100), subject=subject, expect=expect)


def test_not_a_gate():
    assert True
"""


def _make_phase(pytester: pytest.Pytester, test_file: str = TEST_FILE) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "demo.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_demo=test_file)


def _normalized_evidence(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for volatile in ("started", "finished"):
            assert rec.pop(volatile)
        # the code identity is real (git HEAD + hash of uncommitted changes): in a shared
        # working tree it can legitimately change between the two runs
        assert rec["digests"].pop("code").startswith(("git:", "sha256:"))
        out.append(rec)
    return out


def _junit_sets(path: Path) -> dict[str, list[dict[str, str]]]:
    return read_gate_properties(path)


def _tables(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith(("|", "- **"))]


def test_same_evidence_junit_and_report_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    runs = {}
    for workers in ("0", "2"):
        out = pytester.path / f"ev{workers}"
        args = ("-n", workers, "--evidence-dir", str(out), "--junitxml", str(out / "junit.xml"))
        # xdist needs a real subprocess; -n 0 runs in-process (cheaper, same code path)
        run = pytester.runpytest_subprocess if workers != "0" else pytester.runpytest
        result = run(*args)
        result.assert_outcomes(passed=4, failed=2)
        runs[workers] = out
        # one progress line when the phase starts and one when it ends, on stderr only
        err = [line for line in result.stderr.lines if line.startswith("gate-harness:")]
        assert err[0] == "gate-harness: phase demo started (5 tests)", result.stderr.str()
        assert re.fullmatch(
            r"gate-harness: phase demo finished in \d+\.\d s — 5 tests: 1 PASS, 1 FAIL, "
            r"1 INCONCLUSIVE; controls 2/2 as expected",
            err[1],
        )
        assert len(err) == 2 and "gate-harness: phase" not in result.stdout.str()

    ev0 = _normalized_evidence(runs["0"] / "evidence.jsonl")
    ev2 = _normalized_evidence(runs["2"] / "evidence.jsonl")
    assert ev0 == ev2
    verdicts = {(r["subject"], r["gate"]): r["decision"]["verdict"] for r in ev0}
    assert verdicts == {
        ("model", "good"): "PASS",
        ("model", "bad"): "FAIL",
        ("model", "unsure"): "INCONCLUSIVE",
        ("oracle", "good"): "PASS",
        ("mutant", "good"): "FAIL",
    }
    lanes = {r["subject"]: r["lane"] for r in ev0}
    assert lanes == {"model": "real", "oracle": "control", "mutant": "control"}
    # the INCONCLUSIVE gate says what n would decide it (≥ the zero-event n at α/3)
    # the Holm correction is stored per record: the same numbers the report shows
    from harness.adjustment import adjust_records
    from harness.evidence import read_evidence

    stored = read_evidence(runs["2"]).records
    assert adjust_records(stored, recompute=True) == stored
    by_key = {(r.subject, r.gate): r.adjustment for r in stored}
    assert by_key[("model", "good")] is not None and by_key[("model", "good")].family_size == 3
    assert by_key[("model", "unsure")] is not None and not by_key[("model", "unsure")].upgraded
    unsure = next(r for r in ev0 if r["gate"] == "unsure")
    assert unsure["decision"]["n_needed"] >= 2995
    assert unsure["family_size"] == 3
    assert unsure["alpha_decision"] == pytest.approx(0.05 / 3)
    assert unsure["digests"]["model"] == "sha256:model"
    assert unsure["digests"]["spec"].startswith("sha256:")
    raw = runs["2"] / unsure["raw_output"]
    assert len(raw.read_text().splitlines()) == 300

    j0, j2 = _junit_sets(runs["0"] / "junit.xml"), _junit_sets(runs["2"] / "junit.xml")
    assert j0 == j2
    assert len(j0) == 5  # five gate test cases; the plain test has no gate properties
    for sets in j0.values():
        assert len(sets) == 1  # exactly one property set per gate test
        assert {"phase", "id", "verdict", "estimate", "lo", "hi", "n"} <= set(sets[0])
    # ... and, added once the families were complete, the stored Holm numbers
    by_node = {r.nodeid: r for r in stored}
    for (props,) in j0.values():
        adj = by_node[props["nodeid"]].adjustment
        assert adj is not None
        assert props["adjustment"] == "holm"
        assert float(props["p_adjusted"]) == adj.p_adjusted
        assert int(props["family_size"]) == adj.family_size
        assert props["final_verdict"] == adj.verdict
    # the bulky evidence JSON does not leak into the XML
    assert "gate_evidence" not in (runs["2"] / "junit.xml").read_text()
    ET.parse(runs["0"] / "junit.xml")

    md0 = (runs["0"] / "gate-report.md").read_text()
    md2 = (runs["2"] / "gate-report.md").read_text()
    assert _tables(md0) == _tables(md2)
    assert md0 == md2
    assert "(plots/demo.png)" in md0 and (runs["0"] / "plots" / "demo.png").stat().st_size > 1000
    assert "Controls" in md0 and "HARNESS ERROR" not in md0


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [("fail", {"failed": 1}), ("xfail", {"xfailed": 1}), ("pass", {"passed": 1})],
)
def test_inconclusive_modes(pytester: pytest.Pytester, mode: str, outcome: dict[str, int]) -> None:
    _make_phase(pytester)
    result = pytester.runpytest("-k", "unsure", f"--inconclusive={mode}", "-p", "no:cacheprovider")
    result.assert_outcomes(**outcome)
    if mode == "fail":
        result.stdout.fnmatch_lines(["*INCONCLUSIVE: unsure*n ≥ *would decide it*"])


def test_fail_message_is_the_decision_reason(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    result = pytester.runpytest("-k", "bad")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAIL: bad: 0.3 (bounds *vs primary ≥ 0.6*"])
    # pytrace=False: the verdict is the message, not a harness traceback
    assert "harness/gate.py" not in result.stdout.str()


def test_control_mismatch_is_a_harness_error(pytester: pytest.Pytester) -> None:
    test_file = TEST_FILE.replace('("mutant", 20, "FAIL")', '("mutant", 20, "PASS")')
    _make_phase(pytester, test_file)
    result = pytester.runpytest("-k", "control")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*control mismatch*'mutant' must give PASS*gave FAIL*"])
    result.stdout.fnmatch_lines(["*HARNESS ERROR*"])


def test_evidence_without_evidence_dir_still_reaches_junit(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    result = pytester.runpytest("--junitxml", "j.xml", "-k", "good and model")
    result.assert_outcomes(passed=1)
    sets = read_gate_properties(pytester.path / "j.xml")
    assert [s[0]["verdict"] for s in sets.values()] == ["PASS"]
    assert not list(pytester.path.glob("**/evidence.jsonl"))
    # a table on a wide terminal, one block per gate on a narrow one (both name the numbers)
    result.stdout.fnmatch_lines(["*gate-harness*", "*demo — model (real lane)*", "*0.92*"])
    assert "PASS" in result.stdout.str()


def test_phase_filter_and_unknown_phase(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    result = pytester.runpytest("--phase", "demo", "-k", "good and model")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--phase", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phase nope: not defined in*known phases: demo*"])
    # a missing gates directory is a one-line usage error too, not an INTERNALERROR traceback
    result = pytester.runpytest("--phase", "demo", "--gates-dir", "no-such-dir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phase demo: *no-such-dir: gates directory not found*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_other_phase_deselected(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    (pytester.path / "gates" / "other.yaml").write_text(
        PHASE_YAML.replace("phase: demo", "phase: other"), encoding="utf-8"
    )
    result = pytester.runpytest("--phase", "other")
    # all phase-marked tests are demo's → deselected; the plain test still runs
    result.assert_outcomes(passed=1, deselected=5)


def test_unknown_gate_marker_fails_collection(pytester: pytest.Pytester) -> None:
    _make_phase(pytester, TEST_FILE.replace('mark.gate("good")', 'mark.gate("goood")'))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*phase 'demo' has no gate 'goood'; gates: good, bad, unsure*"])
    assert "Traceback" not in result.stdout.str() and "plugin.py" not in result.stdout.str()


def test_phase_spec_fixture_and_options(pytester: pytest.Pytester) -> None:
    _make_phase(
        pytester,
        """
import pytest

@pytest.mark.phase("demo")
def test_spec(phase_spec, harness_options):
    assert [g.id for g in phase_spec.gates] == ["good", "bad", "unsure"]
    assert harness_options.model == "tiny-x"
    assert harness_options.limit == 7
    assert harness_options.lane == "replay"
""",
    )
    result = pytester.runpytest("--model", "tiny-x", "--limit", "7", "--lane", "replay")
    result.assert_outcomes(passed=1)


def test_gpu_marker_skips_without_cuda(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.gpu
def test_needs_cuda():
    raise AssertionError("must not run on a CPU-only machine")
"""
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no CUDA device*"])


def test_previous_evidence_is_kept_not_overwritten(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    out = pytester.path / "ev"
    pytester.runpytest("--evidence-dir", str(out), "-k", "good and model")
    pytester.runpytest("--evidence-dir", str(out), "-k", "good and model")
    assert len(list(out.glob("evidence.prev-*.jsonl"))) == 1
    assert len((out / "evidence.jsonl").read_text().splitlines()) == 1


def test_a_rerun_into_the_same_directory_keeps_both_raw_files(pytester: pytest.Pytester) -> None:
    """One decision per gate and subject per *run*; a second run into the same evidence
    directory gets new raw files instead of replacing the first run's."""
    _make_phase(pytester)
    out = pytester.path / "ev"
    for _ in range(2):
        result = pytester.runpytest("--evidence-dir", str(out), "-k", "model and good")
        result.assert_outcomes(passed=1)
    recs = [json.loads(line) for line in (out / "evidence.jsonl").read_text().splitlines()]
    assert [r["raw_output"] for r in recs] == ["raw/demo/good--model~2.jsonl"]
    assert (out / "raw/demo/good--model.jsonl").exists()  # the first run's file is kept
    assert len((out / recs[0]["raw_output"]).read_text().splitlines()) == 100


def test_progress_can_be_silenced_and_reports_a_stopped_phase(pytester: pytest.Pytester) -> None:
    _make_phase(pytester)
    quiet = pytester.runpytest("--no-gate-progress", "-k", "good and model")
    quiet.assert_outcomes(passed=1)
    assert "gate-harness: phase" not in quiet.stderr.str()
    stopped = pytester.runpytest("-x")
    stopped.assert_outcomes(passed=1, failed=1)
    stopped.stderr.fnmatch_lines(
        [
            "gate-harness: phase demo started (5 tests)",
            "gate-harness: phase demo stopped after 2 of 5 tests (*s): 1 PASS, 1 FAIL, "
            "0 INCONCLUSIVE",
        ]
    )


TIMED_YAML = """\
phase: timed
alpha: 0.05
multiplicity: holm
gates:
  - id: strong
    metric: proportion
    direction: ge
    tiers: {primary: 0.5}
  - id: edge
    metric: proportion
    direction: ge
    tiers: {primary: 0.5}
"""

TIMED_TESTS = """\
import time

import pytest
from harness.outcomes import Outcome


def outcomes(k, n):
    return [Outcome(item_id=f"item-{i:04d}", value=1.0 if i < k else 0.0) for i in range(n)]


@pytest.fixture(scope="session")
def trained():
    time.sleep(1.5)  # the phase's expensive work, done before its first test reports
    return 90


@pytest.mark.phase("timed")
@pytest.mark.gate("strong")
def test_a_strong(gate, trained):
    gate.check(outcomes(trained, 100))


@pytest.mark.phase("timed")
@pytest.mark.gate("edge")
def test_b_edge(gate):
    # 59/100 vs 0.5: p ≈ 0.044, INCONCLUSIVE at α/2, PASS after Holm (rank 2, step α)
    gate.check(outcomes(59, 100))
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_fixture_time_counts_and_junit_gets_the_adjusted_verdicts(
    pytester: pytest.Pytester, workers: str
) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "timed.yaml").write_text(TIMED_YAML, encoding="utf-8")
    pytester.makepyfile(test_timed=TIMED_TESTS)
    out = pytester.path / "out"
    junit = out / "junit.xml"
    run = pytester.runpytest_subprocess if workers != "0" else pytester.runpytest
    result = run(
        "-n",
        workers,
        "--junitxml",
        str(junit),
        "--evidence-dir",
        str(out),
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)  # the test itself decided at α/2

    # the phase's clock started when its first test started, before the slow fixture
    err = [line for line in result.stderr.lines if line.startswith("gate-harness: phase")]
    assert err[0] == "gate-harness: phase timed started (2 tests)"
    finished = re.fullmatch(
        r"gate-harness: phase timed finished in (\d+\.\d) s — 2 tests: "
        r"2 PASS \(1 by Holm/BH\), 0 FAIL, 0 INCONCLUSIVE",
        err[1],
    )
    assert finished is not None, err
    assert float(finished.group(1)) >= 1.5
    assert "gate-harness: phase" not in result.stdout.str()  # controller's stderr only

    # junit.xml: pytest's own content is intact, and each gate set has its final numbers
    root = ET.parse(junit).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"test_a_strong", "test_b_edge"}
    assert cases["test_b_edge"].find("failure") is not None
    assert "INCONCLUSIVE: edge" in (cases["test_b_edge"].find("failure").get("message") or "")
    sets = {s[0]["id"]: s[0] for s in read_gate_properties(junit).values()}
    edge, strong = sets["edge"], sets["strong"]
    assert edge["verdict"] == "INCONCLUSIVE" and edge["final_verdict"] == "PASS"
    assert edge["upgraded"] == "true" and edge["rank"] == "2"
    assert edge["adjustment"] == "holm" and edge["family_size"] == "2"
    # Holm at rank 2 of 2: max(2·p₁, p₂) = p₂, which clears α = 0.05 but not α/2
    assert float(edge["p_adjusted"]) == pytest.approx(float(edge["p_value"]))
    assert 0.025 < float(edge["p_adjusted"]) <= 0.05
    assert float(edge["alpha_step"]) == pytest.approx(0.05)
    assert strong["verdict"] == strong["final_verdict"] == "PASS"
    assert strong["upgraded"] == "false" and strong["rank"] == "1"
    assert float(strong["p_adjusted"]) == pytest.approx(2 * float(strong["p_value"]))
    assert float(strong["alpha_step"]) == pytest.approx(0.025)
    # the upgraded PASS carries the tier it meets, in junit, evidence and the report
    assert edge["tier"] == "none" and edge["final_tier"] == "primary"
    assert strong["tier"] == strong["final_tier"] == "primary"
    from harness.evidence import read_evidence

    stored = {r.gate: r for r in read_evidence(out).records}
    assert stored["edge"].adjustment is not None and stored["edge"].adjustment.tier == "primary"
    report = (out / "gate-report.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if line.startswith("| edge "))
    assert "| primary | **INCONCLUSIVE → PASS (Holm)** |" in row
