"""The phase verdict from the gate YAML and the evidence, not from whichever tests ran.

Every gate a selected phase declares ends the run with exactly one final status
per subject: PASS, FAIL or INCONCLUSIVE from its evidence (after the phase's
Holm/BH correction, :mod:`harness.adjustment`), or **MISSING** with the reason
no decision exists — the test was skipped, errored or failed in a fixture
before deciding, never called ``gate.check``, or no collected test decides the
gate at all.  A phase passes only when every status is PASS and every
declared gate was asked for.  Gates whose tests were deselected on purpose
(``-k``, ``-m``, ``--lf``, ``--deselect``) are listed as *not asked for* — not
MISSING, but the phase is then *partial* and not passed: the gates that ran may
all PASS, yet a verdict on part of a phase is not one to ship on.  A phase
deselected whole (``--phase`` naming others) is simply not selected.

The exit code of ``pytest`` (with the plugin) and of ``harness run`` comes from
here, so it cannot depend on how test code treated exceptions: a swallowed FAIL
still exits 1.  The plugin builds a :class:`RunAccount` on the controller and
writes it beside the evidence (:data:`ACCOUNT_FILE`), where ``harness report``
reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from harness.adjustment import adjust_records
from harness.evidence import EvidenceRecord, Lane
from harness.spec import PhaseSpec

__all__ = [
    "ACCOUNT_FILE",
    "FinalStatus",
    "GateStatus",
    "ItemFate",
    "NoClaim",
    "PhaseAccount",
    "RunAccount",
    "account_run",
    "final_status",
]

#: File name of the run's gate accounting inside an evidence directory.
ACCOUNT_FILE = "gate-accounting.json"

#: pytest exit codes the accounting never overrides (interrupted, internal, usage, no tests).
_PYTEST_OWN = frozenset({2, 3, 4, 5})


class FinalStatus(StrEnum):
    """A declared gate's final status for one subject at the end of a run."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    MISSING = "MISSING"


class ItemFate(BaseModel):
    """What the controller learned about one collected test item that decides a gate."""

    model_config = ConfigDict(extra="forbid")

    nodeid: str
    phase: str
    gate: str
    checked: bool = False  # at least one evidence record arrived from this item
    no_claim: str | None = None  # a control/optional subject skipped it on purpose (gate.no_claim)
    problem: str | None = None  # why it ended without a decision (skip reason, error, ...)


class GateStatus(BaseModel):
    """One declared gate's final status for one subject (``subject`` None: it never got one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: str
    gate: str
    subject: str | None = None
    lane: str | None = None
    status: FinalStatus
    reason: str = ""
    nodeid: str | None = None


class NoClaim(BaseModel):
    """A test skipped on purpose: its subject (a control) makes no claim on the gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: str
    nodeid: str
    reason: str


class PhaseAccount(BaseModel):
    """The final statuses of one selected phase and the gates nobody asked for."""

    model_config = ConfigDict(extra="forbid")

    phase: str
    declared: list[str]
    statuses: list[GateStatus] = Field(default_factory=list)
    not_asked: list[str] = Field(default_factory=list)  # gate ids deselected on purpose
    #: skips by ``gate.no_claim`` (not part of the verdict; listed so no skip is silent)
    no_claims: list[NoClaim] = Field(default_factory=list)

    @property
    def missing(self) -> list[GateStatus]:
        return [s for s in self.statuses if s.status is FinalStatus.MISSING]

    @property
    def passed(self) -> bool:
        """Every declared gate was asked for and every final status is PASS."""
        return (
            bool(self.statuses)
            and not self.not_asked
            and all(s.status is FinalStatus.PASS for s in self.statuses)
        )

    def counts(self) -> dict[FinalStatus, int]:
        out = dict.fromkeys(FinalStatus, 0)
        for s in self.statuses:
            out[s.status] += 1
        return out

    def line(self) -> str:
        """'phase codegen: NOT passed — 9 declared gates; 1 PASS, 7 FAIL, 1 MISSING (...)'."""
        c = self.counts()
        parts = [f"{c[v]} {v}" for v in FinalStatus if c[v]]
        verdict = "passed" if self.passed else "NOT passed"
        text = (
            f"phase {self.phase}: {verdict} — {len(self.declared)} declared gate(s), "
            f"{len(self.statuses)} final status(es): {', '.join(parts) or 'none'}"
        )
        if self.missing:
            text += "; MISSING: " + ", ".join(
                sorted({s.gate for s in self.missing}, key=self.declared.index)
            )
        if self.not_asked:
            text += (
                "; not asked for (deselected): "
                + ", ".join(self.not_asked)
                + " — a partial run of the phase is not a phase PASS (run all its gates)"
            )
        return text


class RunAccount(BaseModel):
    """Every selected phase's account plus the harness errors seen during the run."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    phases: list[PhaseAccount] = Field(default_factory=list)
    not_asked_phases: list[str] = Field(default_factory=list)
    harness_errors: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.phases)

    def exit_code(self, pytest_code: int, *, verdict_failures_only: bool = False) -> int:
        """0 only if every selected phase passed; 1 FAIL/INCONCLUSIVE/MISSING; 2 harness error.

        pytest's own "interrupted", "internal error", "usage error" and "no tests
        collected" codes are kept; a run that selected no phase keeps pytest's code.
        ``verdict_failures_only``: every failed test failed only because of its gate's
        verdict at α/m, so when the phase correction upgraded them all the run exits 0.
        """
        if pytest_code in _PYTEST_OWN:
            return pytest_code
        if self.harness_errors:
            return 2
        if not self.passed:
            return 1
        if self.phases and verdict_failures_only:
            return 0
        return pytest_code

    def status_of(self, nodeid: str) -> list[GateStatus]:
        """The MISSING statuses a test item is responsible for (for its JUnit test case)."""
        return [s for p in self.phases for s in p.statuses if s.nodeid == nodeid]


def final_status(record: EvidenceRecord) -> FinalStatus:
    """The record's verdict after the phase's multiplicity correction."""
    return FinalStatus(str(record.final_verdict))


def account_run(
    phases: Sequence[PhaseSpec],
    *,
    selected: Iterable[str],
    records: Iterable[EvidenceRecord],
    items: Iterable[ItemFate],
    deselected: Mapping[str, tuple[str, str]] = {},
    harness_errors: Sequence[str] = (),
) -> RunAccount:
    """Account for every declared gate of every selected phase (see the module docstring).

    ``deselected`` maps a deselected item's node id to its (phase, gate).
    Records are adjusted (Holm/BH) here if the caller has not done so.
    """
    wanted = set(selected)
    recs = adjust_records(sorted(records, key=EvidenceRecord.sort_key))
    fates = list(items)
    errors = list(harness_errors) + _control_errors(recs)
    out = RunAccount(harness_errors=errors)
    asked_phases = {f.phase for f in fates}
    for spec in phases:
        if spec.phase not in wanted:
            if spec.phase in {p for p, _ in deselected.values()} - asked_phases:
                out.not_asked_phases.append(spec.phase)
            continue
        out.phases.append(_account_phase(spec, recs, fates, deselected))
    return out


def _control_errors(records: Sequence[EvidenceRecord]) -> list[str]:
    return [
        f"control mismatch: subject '{r.subject}' must give {r.expect} on gate "
        f"'{r.phase}/{r.gate}' but gave {r.verdict} ({r.nodeid or 'no test id'})"
        for r in records
        if r.control_ok is False
    ]


def _account_phase(
    spec: PhaseSpec,
    records: Sequence[EvidenceRecord],
    fates: Sequence[ItemFate],
    deselected: Mapping[str, tuple[str, str]],
) -> PhaseAccount:
    acc = PhaseAccount(phase=spec.phase, declared=[g.id for g in spec.gates])
    for gate in spec.gates:
        decided = [
            r
            for r in records
            if r.phase == spec.phase and r.gate == gate.id and r.lane is not Lane.CONTROL
        ]
        seen: set[tuple[str, str]] = set()
        for rec in decided:
            if (str(rec.lane), rec.subject) in seen:
                continue  # a duplicate check is a harness error reported elsewhere
            seen.add((str(rec.lane), rec.subject))
            acc.statuses.append(
                GateStatus(
                    phase=spec.phase,
                    gate=gate.id,
                    subject=rec.subject,
                    lane=str(rec.lane),
                    status=final_status(rec),
                    reason=str(rec.decision.get("reason", "")),
                    nodeid=rec.nodeid,
                )
            )
        mine = [f for f in fates if f.phase == spec.phase and f.gate == gate.id]
        acc.no_claims += [
            NoClaim(gate=gate.id, nodeid=f.nodeid, reason=f.no_claim)
            for f in mine
            if f.no_claim is not None and not f.checked
        ]
        undecided = [f for f in mine if not f.checked and f.no_claim is None]
        for fate in undecided:
            acc.statuses.append(
                GateStatus(
                    phase=spec.phase,
                    gate=gate.id,
                    status=FinalStatus.MISSING,
                    reason=fate.problem or "the test ended without deciding the gate",
                    nodeid=fate.nodeid,
                )
            )
        if decided or undecided:
            continue
        why = _why_no_decision(spec.phase, gate.id, mine, deselected)
        if why is None:
            acc.not_asked.append(gate.id)
        else:
            acc.statuses.append(
                GateStatus(phase=spec.phase, gate=gate.id, status=FinalStatus.MISSING, reason=why)
            )
    return acc


def _why_no_decision(
    phase: str, gate: str, mine: Sequence[ItemFate], deselected: Mapping[str, tuple[str, str]]
) -> str | None:
    """Reason a gate without any model decision is MISSING; None if it was deselected on purpose."""
    if mine:
        claims = "; ".join(f"{f.nodeid}: {f.no_claim}" for f in mine if f.no_claim)
        return "only control subjects decided it; no model subject has a verdict" + (
            f" (no claim: {claims})" if claims else ""
        )
    if (phase, gate) in set(deselected.values()):
        return None
    return (
        f"no collected test decides this gate; add a test marked "
        f"@pytest.mark.phase('{phase}') and @pytest.mark.gate('{gate}') that calls gate.check "
        "(or, if it exists, run it too: a node id, --lf or --sw collected part of the phase)"
    )
