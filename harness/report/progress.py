"""One line per phase while a gate run is going: started, and finished with time and verdicts.

pytest's own progress (dots, percentages) says how many *tests* ran; a gate run
is long and organised by phase, so the controller also prints, to stderr::

    gate-harness: phase codegen started (6 tests)
    gate-harness: phase codegen finished in 183.4 s — 6 tests: 1 PASS, 2 FAIL,
        1 INCONCLUSIVE; controls 2/2 as expected

This module is the bookkeeping only (events in, lines out), so it is the same
with and without xdist; :mod:`harness.plugin` feeds it from the controller's
hooks.  A phase's clock starts when its first test *starts* (the controller's
``pytest_runtest_logstart``, which xdist re-fires on the controller when a
worker starts an item, or a setup report's own start time if that is earlier),
not at its first report: a phase often does its expensive work (a training
run) in a session fixture during its first test's setup, and that time belongs
to the phase.  Verdict counts are the ones the report will show: once every
test of a phase has finished, the phase's families are complete, so the
Holm/BH correction is applied here exactly as in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.decision import Verdict
from harness.evidence import EvidenceRecord, Lane

__all__ = ["PREFIX", "PhaseProgress"]

#: Every progress line starts with this, so logs can be grepped for it.
PREFIX = "gate-harness:"


@dataclass
class _Item:
    records: list[EvidenceRecord] = field(default_factory=list)
    failed: bool = False
    skipped: bool = False
    no_claim: bool = False  # skipped on purpose by gate.no_claim (a control claims nothing)


@dataclass
class _Phase:
    name: str
    nodeids: frozenset[str]
    started: float | None = None
    items: dict[str, _Item] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    closed: bool = False


class PhaseProgress:
    """Turns test start/report events into per-phase progress lines.

    ``expect`` tells it which test (node id) belongs to which phase — from the
    collected items, or from a worker's collection under xdist; tests of no
    phase are ignored.  ``write`` receives each line (no newline).  A phase's
    "finished" line waits for :meth:`flush`, which the plugin calls once pytest
    has finished printing that test's result, so the two never share a line.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._clock = clock
        self._created = clock()  # no phase test can start before the run's tests are known
        self._phases: dict[str, _Phase] = {}
        self._phase_of: dict[str, str] = {}
        self._pending: list[str] = []

    @property
    def expecting(self) -> bool:
        """True once the phase membership of the run is known."""
        return bool(self._phases)

    def expect(self, phase_of: Mapping[str, str]) -> None:
        """Declare the run's phase tests (node id → phase); later calls are ignored."""
        if self._phases:
            return
        members: dict[str, set[str]] = {}
        for nodeid, phase in phase_of.items():
            members.setdefault(phase, set()).add(nodeid)
        self._phases = {name: _Phase(name, frozenset(ids)) for name, ids in members.items()}
        self._phase_of = dict(phase_of)

    def start(self, nodeid: str, *, at: float | None = None) -> None:
        """A test started (now, or ``at`` on this object's clock): its phase starts no later.

        The first test of a phase prints the "started" line; an ``at`` earlier
        than the phase's start so far moves the start back (never before this
        object was created, which guards against a skewed clock).
        """
        phase = self._phase_for(nodeid)
        if phase is None:
            return
        when = self._clock() if at is None else max(at, self._created)
        if phase.started is not None:
            phase.started = min(phase.started, when)
            return
        self.flush()
        phase.started = when
        self._write(f"{PREFIX} phase {phase.name} started ({_tests(len(phase.nodeids))})")

    def report(
        self,
        nodeid: str,
        *,
        when: str,
        failed: bool,
        skipped: bool,
        no_claim: bool = False,
        records: Sequence[EvidenceRecord] = (),
        began: float | None = None,
    ) -> None:
        """A setup/call/teardown report; teardown (or xdist's crash report) ends the test.

        ``began`` is when the reported step (e.g. setup, with its fixtures)
        began, on this object's clock, if known: the phase started no later
        than that, even if its test's start event was missed.
        """
        phase = self._phase_for(nodeid)
        if phase is None or nodeid in phase.done:
            return
        if phase.started is None or began is not None:
            self.start(nodeid, at=began)
        item = phase.items.setdefault(nodeid, _Item())
        item.records.extend(records)
        item.failed |= failed
        item.skipped |= skipped
        item.no_claim |= no_claim
        if when in ("setup", "call"):
            return
        phase.done.add(nodeid)
        if len(phase.done) == len(phase.nodeids) and not phase.closed:
            phase.closed = True
            self._pending.append(self._summary(phase, stopped=False))

    def flush(self) -> None:
        """Write the lines of phases that finished since the last flush."""
        pending, self._pending = self._pending, []
        for line in pending:
            self._write(line)

    def close(self) -> None:
        """End of session: phases that started but did not finish say how far they got."""
        self.flush()
        for phase in self._phases.values():
            if phase.started is not None and not phase.closed:
                phase.closed = True
                self._write(self._summary(phase, stopped=True))

    # ------------------------------------------------------------------ helpers

    def _phase_for(self, nodeid: str) -> _Phase | None:
        name = self._phase_of.get(nodeid)
        return None if name is None else self._phases[name]

    def _summary(self, phase: _Phase, *, stopped: bool) -> str:
        from harness.adjustment import adjust_records

        assert phase.started is not None
        wall = self._clock() - phase.started
        total = _tests(len(phase.nodeids))
        if stopped:
            head = f"phase {phase.name} stopped after {len(phase.done)} of {total} ({wall:.1f} s)"
        else:
            head = f"phase {phase.name} finished in {wall:.1f} s — {total}"
        done = [phase.items[n] for n in sorted(phase.done) if n in phase.items]
        records = adjust_records(r for item in done for r in item.records)
        return f"{PREFIX} {head}: {'; '.join(_counts(records, done))}"


def _counts(records: Sequence[EvidenceRecord], done: Sequence[_Item]) -> list[str]:
    """'2 PASS (1 by Holm/BH), 1 FAIL, 0 INCONCLUSIVE', controls, tests without a verdict."""
    subjects = [r for r in records if r.lane is not Lane.CONTROL]
    controls = [r for r in records if r.lane is Lane.CONTROL]
    parts: list[str] = []
    if subjects:
        counts = dict.fromkeys(Verdict, 0)
        upgraded = 0
        for rec in subjects:
            adj = rec.adjustment
            counts[rec.final_verdict] += 1
            upgraded += adj is not None and adj.upgraded
        texts = [f"{counts[v]} {v}" for v in Verdict]
        if upgraded:
            texts[0] += f" ({upgraded} by Holm/BH)"
        parts.append(", ".join(texts))
    if controls:
        wrong = sum(1 for r in controls if r.control_ok is False)
        text = f"controls {len(controls) - wrong}/{len(controls)} as expected"
        parts.append(text + (f", {wrong} WRONG (harness error)" if wrong else ""))
    broken = sum(1 for item in done if item.failed and not item.records)
    skipped = [item for item in done if item.skipped and not item.failed and not item.records]
    on_purpose = sum(1 for item in skipped if item.no_claim)
    if broken:
        parts.append(f"{broken} failed without a gate verdict")
    if len(skipped) > on_purpose:
        # outside a shard run its gate is MISSING (the gate report says why)
        parts.append(f"{len(skipped) - on_purpose} skipped without a verdict")
    if on_purpose:
        parts.append(f"{on_purpose} no-claim skip(s) (a control claims nothing on that gate)")
    return parts or ["no gate verdicts"]


def _tests(n: int) -> str:
    return f"{n} test" + ("" if n == 1 else "s")
