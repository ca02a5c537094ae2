"""A gate bound to the running test: estimate, decide, record evidence, set the outcome.

Suites stay thin: they build a subject, produce :class:`~harness.outcomes.Outcome`
objects and call :meth:`Gate.check`.  Everything that must be the same for every
gate — the α bookkeeping (Bonferroni level per item, two-sided estimate at 2α),
the decision rule, the evidence record, the raw-output file and the mapping from
verdict to pytest outcome — lives here once.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import pytest

from harness import metrics
from harness.cachekey import caches_used, training_runs_used
from harness.decision import (
    Decision,
    Verdict,
    decide,
    guard_machine_load,
    guard_sandbox_errors,
    sandbox_error_count,
)
from harness.errors import HarnessError, StatsError
from harness.evidence import (
    Digests,
    EvidenceRecord,
    EvidenceStore,
    Lane,
    code_digest,
    harness_identity,
    now_utc,
    repo_digest,
    sha256_json,
)
from harness.machine_load import machine_load_of
from harness.outcomes import Outcome
from harness.shard import ShardSpec
from harness.spec import GateSpec, Multiplicity, PhaseSpec
from harness.stats.estimate import Estimate

__all__ = [
    "EVIDENCE_PROPERTY",
    "HARNESS_ERROR_PROPERTY",
    "NO_CLAIM_PROPERTY",
    "SHARD_PROPERTY",
    "VERDICT_FAILURE_PROPERTY",
    "Claim",
    "Gate",
    "GateOptions",
    "InconclusiveMode",
    "SequentialMonitor",
    "family_size",
]

#: ``user_properties`` key under which a test item carries its evidence to the controller.
EVIDENCE_PROPERTY = "gate_evidence"
#: ``user_properties`` key: a harness error seen while deciding (the controller exits 2).
HARNESS_ERROR_PROPERTY = "gate_harness_error"
#: ``user_properties`` key: the test failed only because of its gate's own verdict.
VERDICT_FAILURE_PROPERTY = "gate_verdict_failure"
#: ``user_properties`` key: a control/optional subject declared it makes no claim on the gate.
NO_CLAIM_PROPERTY = "gate_no_claim"
#: ``user_properties`` key: under ``--shard`` the test recorded its shard file (path as value).
SHARD_PROPERTY = "gate_shard"

#: ``claim(gate, lane, subject, call_site)``: registers one decision per gate+subject per run
#: and raises :class:`HarnessError` naming both call sites on a second one (see the plugin).
Claim = Callable[["Gate", str, str, str], None]

T = TypeVar("T")


@dataclass(frozen=True)
class _Call:
    """One :meth:`Gate.check` call, its lane and expected verdict resolved."""

    outcomes: Sequence[Outcome]
    baseline: Sequence[Outcome] | None
    lane: Lane
    subject: str
    expect: Verdict | None
    model_digest: str | None
    data_digest: str | None
    sandbox: str | None
    raw_outputs: Iterable[Mapping[str, Any]] | None
    extra: Mapping[str, Any] | None
    estimate: Estimate | None
    site: str


class InconclusiveMode(StrEnum):
    """What an INCONCLUSIVE verdict does to the pytest outcome (``--inconclusive``)."""

    FAIL = "fail"
    XFAIL = "xfail"
    PASS = "pass"


class _Node(Protocol):
    nodeid: str
    user_properties: list[tuple[str, object]]


@dataclass(frozen=True)
class GateOptions:
    """Run-wide settings a gate needs (from the pytest command line)."""

    evidence_dir: Path | None = None
    inconclusive: InconclusiveMode = InconclusiveMode.FAIL
    sequential: bool = False
    lane: Lane = Lane.REAL
    seed: int = 0
    #: the gate YAML (file or directory) whose repo identifies the code (with the test file)
    code_paths: tuple[str, ...] = ()
    #: ``--shard I/N``: record this shard's outcomes for ``harness merge``, decide nothing
    shard: ShardSpec | None = None


def family_size(phase: PhaseSpec) -> int:
    """m for the Bonferroni level α/m: gates of the phase that carry sampling error.

    ``count`` gates are exact, so they take no share of α.  With
    ``multiplicity: none`` every gate is decided at its own α.
    """
    if phase.multiplicity == Multiplicity.NONE:
        return 1
    return max(1, sum(1 for g in phase.gates if g.metric != "count"))


@dataclass
class Gate:
    """One gate of one phase, bound to the pytest item that decides it."""

    phase: PhaseSpec
    spec: GateSpec
    node: _Node | None = None
    options: GateOptions = field(default_factory=GateOptions)
    started: datetime = field(default_factory=now_utc)
    decisions: list[Decision] = field(default_factory=list)
    last_record: EvidenceRecord | None = None
    claim: Claim | None = None
    no_claim_reason: str | None = None
    #: the ordered item units a shard-aware suite passed to :meth:`shard_items`
    shard_universe: list[str] | None = None

    # ------------------------------------------------------------------ α bookkeeping

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def alpha(self) -> float:
        """The gate's nominal one-sided level (gate α, else phase α)."""
        return self.phase.alpha_for(self.spec)

    @property
    def family_size(self) -> int:
        return family_size(self.phase)

    @property
    def alpha_decision(self) -> float:
        """One-sided level this item decides at: α/m (α for exact ``count`` gates)."""
        if self.spec.metric == "count":
            return self.alpha
        return self.alpha / self.family_size

    @property
    def index(self) -> int:
        return [g.id for g in self.phase.gates].index(self.spec.id)

    def spec_digest(self) -> str:
        phase = self.phase.model_dump(mode="json", exclude={"gates"})
        return sha256_json({"phase": phase, "gate": self.spec.model_dump(mode="json")})

    # ------------------------------------------------------------------ sharding

    def shard_items(self, items: Iterable[T], *, key: Callable[[T], str]) -> list[T]:
        """The items this run evaluates: all of them, or this shard's under ``--shard I/N``.

        ``key`` gives each item's unit — the ``cluster`` of its outcomes when
        they have one (a task's samples), else their ``item_id``.  A suite that
        calls this evaluates only 1/N of the data per shard; ``harness merge``
        puts the outcomes back in this order (:mod:`harness.shard`).
        """
        listed = list(items)
        if self.options.shard is None:
            return listed
        self.shard_universe = [key(item) for item in listed]
        return [
            item
            for item, unit in zip(listed, self.shard_universe, strict=True)
            if self.options.shard.owns(unit)
        ]

    # ------------------------------------------------------------------ deciding

    def evaluate(
        self,
        outcomes: Sequence[Outcome],
        *,
        baseline: Sequence[Outcome] | None = None,
    ) -> tuple[Estimate, Decision, float | None]:
        """Estimate and decide without recording anything (for scripts and calibration)."""
        a = self.alpha_decision
        estimate = metrics.estimate_metric(
            self.spec, outcomes, alpha=2 * a, baseline=baseline, seed=self.options.seed
        )
        return self._decide(estimate, outcomes, baseline=baseline)

    def _decide(
        self,
        estimate: Estimate,
        outcomes: Sequence[Outcome],
        *,
        baseline: Sequence[Outcome] | None,
        with_p: bool = True,
    ) -> tuple[Estimate, Decision, float | None]:
        a = self.alpha_decision

        def plan(threshold: float) -> int | None:
            try:
                return metrics.n_needed(self.spec, estimate, threshold=threshold, alpha=a)
            except StatsError:
                return None

        def advise(threshold: float) -> str | None:
            try:
                return metrics.advice(self.spec, estimate, threshold=threshold, alpha=a)
            except StatsError:
                return None

        decision = decide(self.spec, estimate, alpha=a, n_needed=plan, advice=advise)
        decision = guard_sandbox_errors(
            decision, errors=sandbox_error_count(outcomes), total=len(outcomes)
        )
        decision = guard_machine_load(decision, load=machine_load_of(outcomes))
        p: float | None = None
        if with_p and self.spec.metric != "count":
            try:
                p = metrics.p_value(
                    self.spec,
                    outcomes,
                    threshold=decision.threshold,
                    baseline=baseline,
                    seed=self.options.seed,  # the seed the estimate used (one test, one seed)
                )
            except StatsError:
                p = None  # no test for this metric: Holm simply cannot upgrade it
            if p is not None and math.isnan(p):
                p = None
        return estimate, decision, p

    def check(
        self,
        outcomes: Sequence[Outcome],
        *,
        baseline: Sequence[Outcome] | None = None,
        lane: Lane | str | None = None,
        subject: str = "model",
        expect: Verdict | str | None = None,
        model_digest: str | None = None,
        data_digest: str | None = None,
        sandbox: str | None = None,
        raw_outputs: Iterable[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        estimate: Estimate | None = None,
    ) -> Decision:
        """Decide the gate on ``outcomes``, record evidence, and set the test outcome.

        PASS returns the decision; FAIL fails the test with the decision's
        reason; INCONCLUSIVE follows ``--inconclusive``.  With ``expect`` (a
        control subject) the test passes exactly when the verdict equals
        ``expect`` — a control that misbehaves means the harness is broken.
        ``estimate`` lets a caller supply an already-valid estimate (the
        anytime-valid one from :meth:`sequential`); it must be at least as strict
        as the gate's level, which :func:`~harness.decision.decide` enforces.
        """
        try:
            if not isinstance(subject, str) or not subject.strip():
                raise HarnessError(
                    f"gate {self.phase.phase}/{self.id}: subject={subject!r} must be a non-empty "
                    "string naming what is judged (e.g. subject='candidate'); the phase "
                    "verdict is given per subject"
                )
            expect_v = Verdict(expect) if expect is not None else None
            call = _Call(
                outcomes=outcomes,
                baseline=baseline,
                lane=self._lane(lane, expect_v),
                subject=subject,
                expect=expect_v,
                model_digest=model_digest,
                data_digest=data_digest,
                sandbox=sandbox,
                raw_outputs=raw_outputs,
                extra=extra,
                estimate=estimate,
                site=_call_site(),
            )
            return self._check(call)
        except HarnessError as exc:
            self._tag(HARNESS_ERROR_PROPERTY, f"{self.phase.phase}/{self.id}: {exc}")
            raise

    def no_claim(self, reason: str, *, subject: str) -> None:
        """Skip this test on purpose: ``subject`` (a control or an optional subject) makes no
        claim on the gate.  Unlike a plain ``pytest.skip``, the gate is not MISSING for it —
        the phase still needs a model verdict from another test."""
        self.no_claim_reason = f"subject '{subject}': {reason}"
        self._tag(NO_CLAIM_PROPERTY, self.no_claim_reason)
        pytest.skip(reason)

    def node_tag(self, key: str, value: str) -> None:
        """Attach an internal ``(key, value)`` to the running test's report (the controller
        reads and removes it; see :mod:`harness.plugin`)."""
        if self.node is not None:
            self.node.user_properties.append((key, value))

    _tag = node_tag

    def _check(self, call: _Call) -> Decision:
        self._require_sequential_estimate(call.estimate)
        if self.claim is not None:
            self.claim(self, str(call.lane), call.subject, call.site)
        if self.options.shard is not None:
            self._record_shard(call)
        if call.estimate is None:
            est, decision, p = self.evaluate(call.outcomes, baseline=call.baseline)
        else:
            # a supplied (anytime-valid) estimate: the fixed-n test's p-value would not be
            # valid after optional stopping, so Holm/BH cannot use this gate
            est, decision, p = self._decide(
                call.estimate, call.outcomes, baseline=call.baseline, with_p=False
            )
        self.decisions.append(decision)
        extra_d = self._evidence_extra(call.outcomes, call.extra)
        raw_rel = self._write_raw(call.outcomes, call.raw_outputs, call.subject, extra_d)
        record = EvidenceRecord(
            phase=self.phase.phase,
            gate=self.id,
            gate_index=self.index,
            nodeid=self.node.nodeid if self.node is not None else None,
            subject=call.subject,
            lane=call.lane,
            expect=call.expect,
            metric=self.spec.metric,
            direction=str(self.spec.direction),
            unit=self.spec.unit,
            spec=self.spec.model_dump(mode="json"),
            alpha=self.alpha,
            alpha_decision=self.alpha_decision,
            family_size=self.family_size,
            multiplicity=str(self.phase.multiplicity),
            estimate=est.to_dict(),
            decision=decision.to_dict(),
            p_value=p,
            sandbox=call.sandbox,
            digests=self._digests(call),
            started=self.started,
            finished=now_utc(),
            raw_output=raw_rel,
            call_site=call.site,
            extra=extra_d,
        )
        self._attach(record)
        self._apply(decision, call.expect, call.subject)
        return decision

    def _record_shard(self, call: _Call) -> NoReturn:
        """``--shard``: write this shard's outcomes (no verdict) and end the test skipped."""
        from harness.shard_record import record_shard

        where = record_shard(
            self,
            call.outcomes,
            baseline=call.baseline,
            lane=call.lane,
            subject=call.subject,
            expect=call.expect,
            digests=self._digests(call),
            sandbox=call.sandbox,
            raw_outputs=call.raw_outputs,
            extra=call.extra,
            estimate=call.estimate,
            site=call.site,
        )
        self._tag(SHARD_PROPERTY, where)
        pytest.skip(
            f"shard {self.options.shard}: outcomes recorded in {where}; "
            "`harness merge` decides the gate"
        )

    def _lane(self, lane: Lane | str | None, expect: Verdict | None) -> Lane:
        """The evidence lane: as given, else control for a control subject, else real —
        which ``--lane replay`` refuses (the lane comes from the generations, not the flag)."""
        if lane is not None:
            return Lane(lane)
        if expect is not None:
            return Lane.CONTROL
        if self.options.lane is Lane.REPLAY:
            raise HarnessError(
                f"gate {self.phase.phase}/{self.id}: run with --lane replay but the test "
                "did not say which lane its outcomes came from; pass lane= from the "
                "generations (Generation.lane), or run this phase in the real lane"
            )
        return Lane.REAL

    def _require_sequential_estimate(self, estimate: Estimate | None) -> None:
        """A ``sequential: true`` gate decides only on the anytime-valid estimate."""
        if self.spec.sequential and not (estimate is not None and estimate.extra.get("sequential")):
            raise HarnessError(
                f"gate '{self.id}' is declared sequential: decide each look on the anytime-valid "
                "estimate — monitor = gate.sequential(...); gate.check(outcomes, "
                "estimate=monitor.estimate())"
            )

    def _digests(self, call: _Call) -> Digests:
        return Digests(
            model=call.model_digest,
            data=call.data_digest,
            spec=self.spec_digest(),
            code=self._code_identity(),
            harness=harness_identity(),
        )

    @staticmethod
    def _evidence_extra(
        outcomes: Sequence[Outcome], extra: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The caller's ``extra`` plus what ties the verdict to its inputs."""
        extra_d: dict[str, Any] = dict(extra or {})
        extra_d["outcomes_digest"] = sha256_json([o.to_dict() for o in outcomes])
        extra_d.setdefault("caches", caches_used())  # cache keys behind this verdict
        extra_d.setdefault("training_runs", training_runs_used())  # W&B runs (trainers.tracking)
        return extra_d

    def _write_raw(
        self,
        outcomes: Sequence[Outcome],
        raw_outputs: Iterable[Mapping[str, Any]] | None,
        subject: str,
        extra_d: dict[str, Any],
    ) -> str | None:
        """Write the raw outputs (else the outcomes) beside the evidence; their relative path.

        With raw outputs the outcomes get a file of their own, named in
        ``extra_d["outcomes_file"]``.  None without an evidence directory.
        """
        if self.options.evidence_dir is None:
            return None
        store = EvidenceStore(self.options.evidence_dir)
        rows: Iterable[Mapping[str, Any]]
        if raw_outputs is not None:
            rows = list(raw_outputs)
            extra_d["outcomes_file"] = store.write_raw(
                self.phase.phase,
                self.id,
                f"{subject}.outcomes",
                (o.to_dict() for o in outcomes),
            )
        else:
            rows = [o.to_dict() for o in outcomes]
        return store.write_raw(self.phase.phase, self.id, subject, rows)

    def _attach(self, record: EvidenceRecord) -> None:
        """Carry ``record`` to the controller on the test's report (a sequential gate's
        latest look of a subject replaces its earlier ones)."""
        if self.node is not None:
            if self.spec.sequential:  # an earlier look of this subject no longer decides
                self.node.user_properties[:] = [
                    (k, v)
                    for k, v in self.node.user_properties
                    if not (k == EVIDENCE_PROPERTY and _same_subject(v, record))
                ]
            self.node.user_properties.append((EVIDENCE_PROPERTY, record.model_dump_json()))
        self.last_record = record

    def _code_identity(self) -> str:
        """The user's repo (gates + this test file), or gate-harness's own code without one."""
        test_file = getattr(self.node, "path", None)
        paths = (*self.options.code_paths, *([str(test_file)] if test_file is not None else []))
        return repo_digest(paths) if paths else code_digest()

    def _apply(self, decision: Decision, expect: Verdict | None, subject: str) -> None:
        """Map the verdict to the pytest outcome (see module docs)."""
        if expect is not None:
            if decision.verdict is not expect:
                pytest.fail(
                    f"control mismatch: control subject '{subject}' must give {expect} on gate "
                    f"'{self.id}' but gave {decision.verdict} — the harness (evaluator, "
                    f"statistics or gate spec) is broken, not the model. {decision.reason}",
                    pytrace=False,
                )
            return
        if decision.verdict is Verdict.PASS:
            return
        if decision.verdict is Verdict.FAIL or self.options.inconclusive is InconclusiveMode.FAIL:
            # the test fails *because of* the verdict: the phase's Holm/BH step may still
            # upgrade it, and the exit code follows the final status, not this outcome
            self._tag(VERDICT_FAILURE_PROPERTY, f"{self.id}: {decision.verdict}")
            pytest.fail(decision.reason, pytrace=False)
        mode = self.options.inconclusive
        if mode is InconclusiveMode.XFAIL:
            pytest.xfail(decision.reason)

    # ------------------------------------------------------------------ sequential

    def sequential(
        self,
        *,
        lower: float = 0.0,
        upper: float = 1.0,
        max_n: int | None = None,
        min_n: int = 1,
    ) -> SequentialMonitor:
        """A monitor telling the caller when it may stop sampling (``--sequential``).

        The caller feeds per-unit values in ``[lower, upper]`` whose mean is the
        gate's metric and stops when :attr:`SequentialMonitor.stop` turns true;
        then ``gate.check(outcomes, estimate=monitor.estimate())`` decides on
        the anytime-valid bound, which stays valid however early sampling stopped.
        Without ``--sequential`` the monitor never stops early, so the fixed-n
        estimate remains valid.
        """
        return SequentialMonitor(
            gate=self,
            enabled=self.options.sequential,
            lower=lower,
            upper=upper,
            max_n=max_n,
            min_n=min_n,
        )


@dataclass
class SequentialMonitor:
    """Anytime-valid stopping rule for one gate (a confidence sequence for a bounded mean).

    Values are rescaled from ``[lower, upper]`` to [0, 1] for the betting
    confidence sequence of :mod:`harness.stats.sequential`, run at two-sided
    ``2·α/m`` so each bound is a one-sided anytime bound at the gate's level.
    """

    gate: Gate
    enabled: bool
    lower: float = 0.0
    upper: float = 1.0
    max_n: int | None = None
    min_n: int = 1
    values: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        from harness.stats.sequential import ConfidenceSequence

        if not self.upper > self.lower:
            raise StatsError(
                f"gate '{self.gate.id}': sequential bounds lower={self.lower} upper={self.upper} "
                "must satisfy lower < upper"
            )
        self._cs = ConfidenceSequence(alpha=2 * self.gate.alpha_decision)

    def update(self, values: float | Iterable[float]) -> bool:
        """Add observations; return True when sampling may stop."""
        new = [float(values)] if isinstance(values, int | float) else [float(v) for v in values]
        span = self.upper - self.lower
        for v in new:
            if not (self.lower <= v <= self.upper):
                raise StatsError(
                    f"gate '{self.gate.id}': sequential value {v!r} is outside "
                    f"[{self.lower}, {self.upper}]; the anytime-valid bound needs bounded values"
                )
            self._cs.update((v - self.lower) / span)
            self.values.append(v)
        return self.stop

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def stop(self) -> bool:
        """True once sampling may stop: decided (with ``--sequential``) or ``max_n`` reached."""
        if self.max_n is not None and self.n >= self.max_n:
            return True
        if not self.enabled or self.n < self.min_n:
            return False
        return self.decided

    @property
    def decided(self) -> bool:
        """Would the anytime-valid bound decide the gate's required tier right now?"""
        if self.n == 0:
            return False
        verdict = decide(self.gate.spec, self.estimate(), alpha=self.gate.alpha_decision).verdict
        return verdict is not Verdict.INCONCLUSIVE

    def estimate(self) -> Estimate:
        """The anytime-valid interval on the original scale (two-sided ``2·α/m``)."""
        if self.n == 0:
            raise StatsError(f"gate '{self.gate.id}': no sequential observations yet")
        est = self._cs.estimate()
        span = self.upper - self.lower
        return Estimate(
            value=self.lower + est.value * span,
            lo=self.lower + est.lo * span,
            hi=self.lower + est.hi * span,
            n=est.n,
            method=est.method,
            alpha=est.alpha,
            sided=est.sided,
            extra={"sequential": True, "max_n": self.max_n, "enabled": self.enabled},
        )


def _call_site() -> str:
    """``file:line`` of the code that called :meth:`Gate.check` (outside this module)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>"
    path = Path(frame.f_code.co_filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return f"{path.as_posix()}:{frame.f_lineno}"


def _same_subject(value: object, record: EvidenceRecord) -> bool:
    try:
        data = json.loads(str(value))
    except ValueError:
        return False
    return bool(
        data.get("gate") == record.gate
        and data.get("subject") == record.subject
        and data.get("lane") == str(record.lane)
    )
