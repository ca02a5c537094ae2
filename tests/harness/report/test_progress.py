"""Per-phase progress lines from test events (the plugin feeds these; see test_plugin too)."""

from __future__ import annotations

from collections.abc import Callable

from harness.evidence import EvidenceRecord
from harness.report.progress import PREFIX, PhaseProgress

MakeRecord = Callable[..., EvidenceRecord]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracker() -> tuple[PhaseProgress, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    progress = PhaseProgress(lines.append, clock=clock)
    progress.expect({"t::a": "demo", "t::b": "demo", "t::c": "demo", "t::x": "other"})
    return progress, lines, clock


def _run(
    progress: PhaseProgress,
    nodeid: str,
    records: list[EvidenceRecord],
    *,
    failed: bool = False,
    skipped: bool = False,
    no_claim: bool = False,
) -> None:
    progress.start(nodeid)
    progress.report(nodeid, when="setup", failed=False, skipped=skipped, no_claim=no_claim)
    if not skipped:
        progress.report(nodeid, when="call", failed=failed, skipped=False)
    progress.report(nodeid, when="teardown", failed=False, skipped=False, records=records)
    progress.flush()


def test_started_then_finished_with_wall_time_and_final_verdicts(make_record: MakeRecord) -> None:
    progress, lines, clock = _tracker()
    strong, edge = make_record("strong", 90, 100), make_record("edge", 59, 100)
    oracle = make_record("strong", 100, 100, subject="oracle", expect="PASS")
    _run(progress, "t::a", [strong])
    assert lines == [f"{PREFIX} phase demo started (3 tests)"]
    progress.start("t::a")  # a second start of the same phase prints nothing
    progress.start("t::unknown")  # tests of no phase are ignored
    clock.now += 12.34
    _run(progress, "t::b", [edge], failed=True)
    assert len(lines) == 1  # not finished yet
    _run(progress, "t::c", [oracle])
    # edge is INCONCLUSIVE at α/2 but Holm upgrades it — the count is the report's
    assert lines[1] == (
        f"{PREFIX} phase demo finished in 12.3 s — 3 tests: 2 PASS (1 by Holm/BH), 0 FAIL, "
        "0 INCONCLUSIVE; controls 1/1 as expected"
    )
    progress.close()
    assert len(lines) == 2  # a finished phase is not reported again


def test_finished_line_waits_for_flush() -> None:
    progress, lines, _ = _tracker()
    progress.start("t::x")
    progress.report("t::x", when="teardown", failed=False, skipped=False)
    assert lines == [f"{PREFIX} phase other started (1 test)"]
    progress.flush()
    assert lines[1].startswith(f"{PREFIX} phase other finished in 0.0 s — 1 test: ")
    assert lines[1].endswith("no gate verdicts")


def test_broken_skipped_and_wrong_controls_are_counted(make_record: MakeRecord) -> None:
    progress, lines, _ = _tracker()
    wrong = make_record("strong", 10, 100, subject="oracle", expect="PASS")
    _run(progress, "t::a", [], failed=True)  # broke before any verdict
    _run(progress, "t::b", [], skipped=True)
    _run(progress, "t::c", [wrong], failed=True)
    assert lines[-1].endswith(
        "3 tests: controls 0/1 as expected, 1 WRONG (harness error); "
        "1 failed without a gate verdict; 1 skipped without a verdict"
    )


def test_no_claim_skips_are_told_apart_from_skips_without_a_verdict() -> None:
    lines: list[str] = []
    progress = PhaseProgress(lines.append, clock=Clock())
    progress.expect({"t::a": "demo", "t::b": "demo"})
    _run(progress, "t::a", [], skipped=True)  # its gate stays MISSING
    _run(progress, "t::b", [], skipped=True, no_claim=True)  # a control claims nothing
    assert lines[-1].endswith(
        "2 tests: 1 skipped without a verdict; "
        "1 no-claim skip(s) (a control claims nothing on that gate)"
    )


def test_interrupted_phase_says_how_far_it_got(make_record: MakeRecord) -> None:
    progress, lines, clock = _tracker()
    _run(progress, "t::a", [make_record("strong", 30, 100)], failed=True)
    clock.now += 2
    progress.start("t::b")  # then -x / Ctrl-C: b never reports
    progress.close()
    assert lines[-1] == (
        f"{PREFIX} phase demo stopped after 1 of 3 tests (2.0 s): 0 PASS, 1 FAIL, 0 INCONCLUSIVE"
    )
    assert not any("other" in line for line in lines)  # never started: nothing to say


def test_xdist_crash_report_ends_the_test() -> None:
    progress, lines, _ = _tracker()
    progress.expect({"t::z": "ignored"})  # membership is fixed by the first call
    progress.report("t::x", when="???", failed=True, skipped=False)  # worker crashed
    progress.flush()
    assert lines[0] == f"{PREFIX} phase other started (1 test)"
    assert lines[1].endswith("1 test: 1 failed without a gate verdict")


def test_phase_clock_starts_at_the_earliest_start_not_the_first_report() -> None:
    progress, lines, clock = _tracker()  # created at 100.0
    clock.now = 110.0
    progress.start("t::a")  # logstart: the phase starts here, not when a report arrives
    clock.now = 150.0  # a session fixture ran during a's setup
    progress.report("t::a", when="setup", failed=False, skipped=False, began=110.5)
    progress.start("t::b", at=105.0)  # another worker's test began earlier
    progress.start("t::c", at=120.0)  # a later start does not move it
    for nodeid in ("t::a", "t::b", "t::c"):
        progress.report(nodeid, when="teardown", failed=False, skipped=False)
    progress.flush()
    assert lines[-1].startswith(f"{PREFIX} phase demo finished in 45.0 s — 3 tests: ")


def test_a_missed_start_event_is_taken_from_the_setup_report() -> None:
    progress, lines, clock = _tracker()
    clock.now = 130.0
    # no logstart seen: the setup report's own start time starts the phase
    progress.report("t::x", when="setup", failed=False, skipped=False, began=112.5)
    progress.report("t::x", when="teardown", failed=False, skipped=False)
    progress.flush()
    assert lines[0] == f"{PREFIX} phase other started (1 test)"
    assert lines[1].startswith(f"{PREFIX} phase other finished in 17.5 s — 1 test: ")


def test_a_start_before_the_run_began_is_clamped() -> None:
    # a report time from a skewed clock cannot make a phase older than the run
    progress, lines, clock = _tracker()  # created at 100.0
    clock.now = 103.0
    progress.report("t::x", when="setup", failed=False, skipped=False, began=-5000.0)
    progress.report("t::x", when="teardown", failed=False, skipped=False)
    progress.flush()
    assert lines[1].startswith(f"{PREFIX} phase other finished in 3.0 s — 1 test: ")
