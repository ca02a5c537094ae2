"""pytest plugin: phase gates as ordinary tests, evidence gathered on the controller.

Registered as the ``gate_harness`` ``pytest11`` entry point, so any pytest run
in an environment with gate-harness installed has the options, markers and
fixtures below.  Heavy imports (the statistics stack, matplotlib) happen only
when a gate is actually checked or a report written, so plain unit-test runs
and every xdist worker start fast.

xdist: a worker decides its gates and attaches each evidence record to its
test report (``user_properties``); only the controller — the process without
``workerinput`` — appends records to ``evidence.jsonl``, writes the report and
JUnit properties.  Records are re-sorted at the end, so ``-n 0`` and ``-n 2``
produce the same files apart from timestamps.  At the end the controller also
applies the phase's Holm/BH correction and stores it in each record
(``adjustment``) before rewriting ``evidence.jsonl``, and adds the adjusted
numbers and final verdicts to pytest's finished junit.xml (its session-finish
hook runs last, after junitxml has written the file).

Progress: the controller prints one stderr line when a phase starts and one
when its last test finished (wall time, verdict counts), see
:mod:`harness.report.progress`.  The phase's clock starts at its first test's
``pytest_runtest_logstart`` — xdist re-fires that hook on the controller when a
worker starts an item — so work a fixture does during setup counts.  Under
xdist the controller does not collect, so each worker writes its node id →
phase map to a file the controller names in ``workerinput`` and reads when that
worker's collection is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.atomic import atomic_write_text
from harness.errors import HarnessError
from harness.spec import PhaseSpec, load_phases

if TYPE_CHECKING:
    from harness.accounting import ItemFate, RunAccount
    from harness.evidence import EvidenceRecord, EvidenceStore
    from harness.gate import Gate, GateOptions
    from harness.report.progress import PhaseProgress

__all__ = ["HarnessOptions", "HarnessPlugin"]

_EVIDENCE_PROPERTY = "gate_evidence"  # == harness.gate.EVIDENCE_PROPERTY (kept import-light)
_STATE = "gate_harness_state"
_PROGRESS_DIR = "gate_harness_progress_dir"  # workerinput key: where workers put phase maps
_ACCOUNT_DIR = "gate_harness_account_dir"  # workerinput key: where workers put their gate items
# == harness.gate.HARNESS_ERROR_PROPERTY / NO_CLAIM_PROPERTY (kept import-light)
_HARNESS_ERROR_PROPERTY = "gate_harness_error"
_NO_CLAIM_PROPERTY = "gate_no_claim"
_VERDICT_FAILURE_PROPERTY = "gate_verdict_failure"
_SHARD_PROPERTY = "gate_shard"  # == harness.gate.SHARD_PROPERTY
_INTERNAL = frozenset(
    {
        _EVIDENCE_PROPERTY,
        _HARNESS_ERROR_PROPERTY,
        _NO_CLAIM_PROPERTY,
        _VERDICT_FAILURE_PROPERTY,
        _SHARD_PROPERTY,
    }
)
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@dataclass(frozen=True)
class HarnessOptions:
    """Command-line settings suites read through the ``harness_options`` fixture.

    ``model`` and ``limit`` are how ``harness run --model/--limit`` reach the
    suites (as ``--model`` / ``--limit`` pytest options, which xdist forwards to
    every worker).
    """

    gates_dir: Path
    phases: tuple[str, ...]
    evidence_dir: Path | None
    baseline: Path | None
    inconclusive: str
    sequential: bool
    lane: str  # "real" | "replay" (a harness.evidence.Lane value)
    model: str | None
    limit: int | None
    seed: int
    all_phases: bool = False
    shard: str | None = None  # "I/N": record outcomes for `harness merge`, decide nothing


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gate-harness", "gate-harness phase gates")
    group.addoption(
        "--gates-dir",
        default=None,
        help="directory of phase gate YAML files (default: <rootdir>/gates)",
    )
    group.addoption(
        "--phase",
        action="append",
        default=[],
        help="run only gates of this phase (repeatable)",
    )
    group.addoption(
        "--evidence-dir",
        default=None,
        help="write evidence.jsonl, gate-report.md, plots and raw outputs here "
        "(default: no files; evidence still travels in JUnit properties)",
    )
    group.addoption(
        "--baseline",
        default=None,
        help="baseline evidence.jsonl (or report directory) for delta columns",
    )
    group.addoption(
        "--inconclusive",
        choices=["fail", "xfail", "pass"],
        default="fail",
        help="how a test whose gate is INCONCLUSIVE is displayed: failed (default), xfailed or "
        "passed. Display only: the exit code is 1 whenever a gate is not PASS",
    )
    group.addoption(
        "--all-phases",
        action="store_true",
        default=False,
        help="every phase in --gates-dir must be decided, even one no collected test belongs to "
        "(harness run sets this); default: the phases of the collected tests and --phase",
    )
    group.addoption(
        "--sequential",
        action="store_true",
        default=False,
        help="let gates stop sampling early on an anytime-valid bound",
    )
    group.addoption(
        "--lane",
        choices=["real", "replay"],
        default="real",
        help="subject lane for model gates: real backends or recorded replay (default: real)",
    )
    group.addoption(
        "--model",
        default=None,
        help="model (path or identity) the suites evaluate (default: the embedded tiny model)",
    )
    group.addoption(
        "--limit",
        type=int,
        default=None,
        help="evaluate only the first N items of each dataset (a documented subset)",
    )
    group.addoption(
        "--no-gate-summary",
        action="store_true",
        default=False,
        help="do not print the gate summary table and the accounting (harness run prints its own)",
    )
    group.addoption(
        "--no-gate-progress",
        action="store_true",
        default=False,
        help="do not print the per-phase progress lines (started / finished) on stderr",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="evaluate shard I of N of every gate's items (by a hash of the item id) and write "
        "their outcomes, no verdicts; `harness merge` decides on the union (docs/scaling.md)",
    )
    group.addoption(
        "--harness-seed",
        type=int,
        default=0,
        help="seed for bootstrap resampling and sampling in suites (default: 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "phase(name): the test decides gates of phase NAME")
    config.addinivalue_line(
        "markers",
        "gate(*ids): the gate id(s) of the phase this test decides "
        "(without it, a test using the `gate` fixture is parametrized over all gates)",
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped where none is present")
    plugin = HarnessPlugin(config)
    config.pluginmanager.register(plugin, _STATE)
    from harness.phase_order import register

    register(config)  # phase order; --dist loadgroup by the workers' xdist_group maps


def _state(config: pytest.Config) -> HarnessPlugin:
    plugin = config.pluginmanager.get_plugin(_STATE)
    assert isinstance(plugin, HarnessPlugin)
    return plugin


@dataclass(eq=False)  # pluggy keys plugins by identity: they must stay hashable
class HarnessPlugin:
    """Per-session state: options, loaded phases, and (on the controller) evidence."""

    config: pytest.Config
    records: list[EvidenceRecord] = field(default_factory=list)
    baseline: list[EvidenceRecord] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    progress: PhaseProgress | None = None
    _phases: dict[str, PhaseSpec] | None = None
    _progress_dir: Path | None = None
    # parallel to ``records``: (node id, index of the check in its test) — what names the
    # record's JUnit property set (``gate.nodeid`` and the ``gate``/``gate#2`` prefix)
    _record_keys: list[tuple[str, int]] = field(default_factory=list)
    # gate accounting: node id → (phase, gate) of collected / deselected gate items, what became
    # of each item, harness errors, one decision per gate+subject (key → "call site (node)")
    _gate_items: dict[str, tuple[str, str]] = field(default_factory=dict)
    _deselected: dict[str, tuple[str, str]] = field(default_factory=dict)
    _fates: dict[str, ItemFate] = field(default_factory=dict)
    _errors: list[str] = field(default_factory=list)
    _ledger: dict[tuple[str, str, str, str], tuple[str, str]] = field(default_factory=dict)
    _account_dir: Path | None = None
    _other_failures: bool = False  # a test failed for a reason other than its gate's verdict
    _shard_files: list[str] = field(default_factory=list)  # --shard: files the tests wrote
    account: RunAccount | None = None

    def __post_init__(self) -> None:
        self.options = _options(self.config)
        self.controller = not hasattr(self.config, "workerinput")
        self.junit_path = _junit_path(self.config) if self.controller else None
        self.store: EvidenceStore | None = None
        if self.options.evidence_dir is not None:
            from harness.evidence import EvidenceStore

            self.store = EvidenceStore(self.options.evidence_dir)
        if self.controller and self.options.baseline is not None:
            from harness.evidence import read_evidence

            try:
                log = read_evidence(self.options.baseline)
            except HarnessError as exc:
                raise pytest.UsageError(f"--baseline: {exc}") from exc
            self.baseline = log.records
            self.messages += log.warnings
        if self.controller and self.store is not None and self.store.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            moved = self.store.path.with_name(f"evidence.prev-{stamp}.jsonl")
            os.replace(self.store.path, moved)
            self.messages.append(
                f"{self.store.path} existed; kept the previous run's evidence as {moved.name}"
            )

    # ------------------------------------------------------------------ specs

    def phases(self) -> dict[str, PhaseSpec]:
        if self._phases is None:
            self._phases = {p.phase: p for p in load_phases(self.options.gates_dir)}
        return self._phases

    def phase(self, name: str) -> PhaseSpec:
        phases = self.phases()
        if name not in phases:
            known = ", ".join(sorted(phases)) or "(none)"
            raise HarnessError(
                f"phase '{name}' (from @pytest.mark.phase) is not defined in "
                f"{self.options.gates_dir}; known phases: {known}"
            )
        return phases[name]

    # ------------------------------------------------------------------ collection

    @pytest.hookimpl
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        try:
            self._parametrize_gates(metafunc)
        except HarnessError as exc:
            # a clean "ERROR collecting <module>: <message>", not a plugin traceback
            raise pytest.Collector.CollectError(str(exc)) from exc

    def _parametrize_gates(self, metafunc: pytest.Metafunc) -> None:
        if "gate" not in metafunc.fixturenames:
            return
        phase_mark = metafunc.definition.get_closest_marker("phase")
        if phase_mark is None:
            return
        phase = self.phase(_mark_name(phase_mark, "phase"))
        gate_mark = metafunc.definition.get_closest_marker("gate")
        if gate_mark is not None and len(gate_mark.args) == 1:
            phase.gate(str(gate_mark.args[0]))  # validate the id at collection time
            return
        ids = (
            [str(a) for a in gate_mark.args]
            if gate_mark is not None
            else [g.id for g in phase.gates]
        )
        for gate_id in ids:
            phase.gate(gate_id)
        metafunc.parametrize("gate", ids, ids=ids, indirect=True)

    # tryfirst: the phase chains' xdist_group marks (harness.phase_order) must be in place
    # before xdist's own hook turns them into scheduling groups
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        wanted = set(self.options.phases)
        if wanted:
            try:
                self.phases()
            except HarnessError as exc:  # e.g. no gates directory: one line, no traceback
                raise pytest.UsageError(f"--phase {', '.join(sorted(wanted))}: {exc}") from exc
            unknown = sorted(wanted - set(self.phases()))
            if unknown:
                raise pytest.UsageError(
                    f"--phase {', '.join(unknown)}: not defined in {self.options.gates_dir}; "
                    f"known phases: {', '.join(sorted(self.phases()))}"
                )
            keep, drop = [], []
            for item in items:
                mark = item.get_closest_marker("phase")
                if mark is not None and _mark_name(mark, "phase") not in wanted:
                    drop.append(item)
                else:
                    keep.append(item)
            if drop:
                config.hook.pytest_deselected(items=drop)
                items[:] = keep
        self._order_phases(config, items)
        if any(item.get_closest_marker("gpu") for item in items) and not _has_cuda():
            skip = pytest.mark.skip(reason="gpu: no CUDA device is available on this machine")
            for item in items:
                if item.get_closest_marker("gpu"):
                    item.add_marker(skip)

    def _order_phases(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Honour ``after:`` in the phase YAMLs: order, and one xdist worker per phase chain
        (:mod:`harness.phase_order`)."""
        from harness.phase_order import apply_order

        try:
            specs = self.phases()
        except HarnessError:
            return  # no readable gate specs: nothing to order (reported where they are used)
        try:
            items[:] = apply_order(config, items, specs)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from exc

    # ------------------------------------------------------------------ gate accounting

    @pytest.hookimpl
    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            key = _item_gate(item)
            if key is not None:
                self._deselected[item.nodeid] = key

    def _publish_gate_items(self, session: pytest.Session) -> None:
        """Keep (controller) or publish (xdist worker) which gate each collected test decides."""
        items = {i.nodeid: key for i in session.items if (key := _item_gate(i)) is not None}
        workerinput: dict[str, Any] | None = getattr(self.config, "workerinput", None)
        if workerinput is None:
            self._gate_items.update(items)
        elif workerinput.get(_ACCOUNT_DIR):
            _write_json(
                Path(workerinput[_ACCOUNT_DIR]),
                workerinput["workerid"],
                {"items": items, "deselected": self._deselected},
            )

    def _read_worker_items(self) -> None:
        if self._account_dir is None:
            return
        for path in sorted(self._account_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for name, target in (("items", self._gate_items), ("deselected", self._deselected)):
                for nodeid, (phase, gate_id) in data.get(name, {}).items():
                    target[nodeid] = (phase, gate_id)

    def claim(self, gate: Gate, lane: str, subject: str, site: str) -> None:
        """One decision per gate + subject per run; a sequential gate's looks stay in one test."""
        node = gate.node.nodeid if gate.node is not None else "<no test>"
        key = (gate.phase.phase, gate.id, lane, subject)
        if key in self._ledger:
            first_site, first_node = self._ledger[key]
            if not (gate.spec.sequential and first_node == node):
                # the gate+subject has its decision; this test is a harness error, not MISSING
                gate.node_tag(_NO_CLAIM_PROPERTY, "second check of a decided gate+subject")
                raise HarnessError(_duplicate_message(key, (first_site, first_node), (site, node)))
        self._ledger[key] = (site, node)

    def _fate(self, report: pytest.TestReport) -> None:
        """Fold one test report into what became of its gate item (controller)."""
        key = self._gate_items.get(report.nodeid)
        fate = self._fates.get(report.nodeid)
        if fate is None:
            from harness.accounting import ItemFate

            phase, gate_id = key if key is not None else ("", "")
            fate = self._fates[report.nodeid] = ItemFate(
                nodeid=report.nodeid, phase=phase, gate=gate_id
            )
        for name, value in report.user_properties:
            if name == _EVIDENCE_PROPERTY:
                fate.checked = True
            elif name == _NO_CLAIM_PROPERTY:
                fate.no_claim = str(value)
            elif name == _HARNESS_ERROR_PROPERTY and str(value) not in self._errors:
                self._errors.append(str(value))
            elif name == _SHARD_PROPERTY:
                fate.checked = True  # outcomes recorded; `harness merge` decides
                if str(value) not in self._shard_files:  # call and teardown reports carry it
                    self._shard_files.append(str(value))
        shard_written = any(k == _SHARD_PROPERTY for k, _ in report.user_properties)
        if fate.problem is None and (report.failed or (report.skipped and not shard_written)):
            fate.problem = _problem(report)
        verdict_only = report.when == "call" and any(
            k == _VERDICT_FAILURE_PROPERTY for k, _ in report.user_properties
        )
        if report.failed and not verdict_only:
            self._other_failures = True

    # ------------------------------------------------------------------ progress

    @property
    def _progress_wanted(self) -> bool:
        return not self.config.getoption("--no-gate-progress")

    @pytest.hookimpl(tryfirst=True)  # a worker's map must exist before xdist reports collection
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._publish_gate_items(session)
        phase_of = _phase_map(session.items)
        if not phase_of:
            return
        workerinput: dict[str, Any] | None = getattr(self.config, "workerinput", None)
        if workerinput is None:
            self._start_progress(phase_of)
        elif workerinput.get(_PROGRESS_DIR):
            _write_phase_map(Path(workerinput[_PROGRESS_DIR]), workerinput["workerid"], phase_of)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: tell each worker where to write its gate items and phase map."""
        if self._account_dir is None:
            self._account_dir = Path(tempfile.mkdtemp(prefix="gate-harness-items-"))
        node.workerinput[_ACCOUNT_DIR] = str(self._account_dir)
        if not self._progress_wanted:
            return
        if self._progress_dir is None:
            self._progress_dir = Path(tempfile.mkdtemp(prefix="gate-harness-progress-"))
        node.workerinput[_PROGRESS_DIR] = str(self._progress_dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self._progress_dir is None or self.progress is not None:
            return
        path = self._progress_dir / f"{node.workerinput['workerid']}.json"
        try:
            phase_of = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # that worker collected no phase tests (or failed to collect)
        collected = set(ids)
        self._start_progress({k: v for k, v in phase_of.items() if k in collected})

    def _start_progress(self, phase_of: dict[str, str]) -> None:
        if not self.controller or not self._progress_wanted or not phase_of:
            return
        from harness.report.progress import PhaseProgress

        self.progress = PhaseProgress(self._emit)
        self.progress.expect(phase_of)

    def _emit(self, line: str) -> None:
        """Write one progress line to the real stderr, on a line of its own.

        Capturing is paused (the line must reach the user, not a test's
        captured output), and a half-written line of pytest's own progress on
        stdout is ended first, so the two streams never interleave mid-line
        on a terminal.
        """
        capman = self.config.pluginmanager.getplugin("capturemanager")
        tr = self.config.pluginmanager.getplugin("terminalreporter")
        paused = capman.global_and_fixture_disabled() if capman is not None else None
        with paused or contextlib.nullcontext():
            if tr is not None:
                if tr.currentfspath:
                    tr.ensure_newline()  # and the next result re-prints its file name
                elif tr._tw.width_of_current_line:
                    tr._tw.line()
                tr.flush()
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    @pytest.hookimpl(tryfirst=True)  # before the terminal reporter starts the test's line
    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        if self.progress is not None:
            self.progress.start(nodeid)

    @pytest.hookimpl(trylast=True)  # after the terminal reporter finished the test's line
    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        if self.progress is not None:
            self.progress.flush()

    # ------------------------------------------------------------------ evidence (controller)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.controller:
            return
        self._fate(report)
        found = self._take_evidence(report)
        no_claim = any(k == _NO_CLAIM_PROPERTY for k, _ in report.user_properties)
        report.user_properties = [(k, v) for k, v in report.user_properties if k not in _INTERNAL]
        if self.progress is not None:
            self.progress.report(
                report.nodeid,
                when=report.when or "",
                failed=report.failed,
                skipped=report.skipped,
                no_claim=no_claim,
                records=found,
                began=_monotonic_from_epoch(getattr(report, "start", 0.0)),
            )

    def _take_evidence(self, report: pytest.TestReport) -> list[EvidenceRecord]:
        """Swap evidence JSON for JUnit properties; store records (returned) at teardown."""
        if report.when not in ("call", "teardown"):
            return []
        if not any(name == _EVIDENCE_PROPERTY for name, _ in report.user_properties):
            return []
        from harness.evidence import EvidenceRecord
        from harness.report.junit import gate_properties

        props: list[tuple[str, object]] = []
        found: list[EvidenceRecord] = []
        for name, value in report.user_properties:
            if name == _EVIDENCE_PROPERTY:
                found.append(EvidenceRecord.model_validate_json(str(value)))
            else:
                props.append((name, value))
        if not found:
            return []
        for index, rec in enumerate(found):
            props.extend(gate_properties(rec, index=index))
        # junitxml reads the teardown report's properties after us (tryfirst)
        report.user_properties = props
        if report.when != "teardown":
            return []
        for index, rec in enumerate(found):
            if not self._first_decision(rec):
                continue
            self.records.append(rec)
            self._record_keys.append((rec.nodeid or "", index))
            if self.store is not None:
                self.store.append(rec)
        return found

    def _first_decision(self, rec: EvidenceRecord) -> bool:
        """Controller side of :meth:`claim` (checks in other xdist workers): keep the first."""
        key = (rec.phase, rec.gate, str(rec.lane), rec.subject)
        first = next(
            (r for r in self.records if (r.phase, r.gate, str(r.lane), r.subject) == key), None
        )
        if first is None:
            return True
        message = _duplicate_message(
            key,
            (first.call_site or "?", first.nodeid or "?"),
            (rec.call_site or "?", rec.nodeid or "?"),
        )
        if not any(message == e for e in self._errors):
            self._errors.append(message)
        return False

    @pytest.hookimpl(trylast=True)  # after junitxml wrote junit.xml, which we then extend
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.controller:
            return
        if self.progress is not None:
            self.progress.close()
        if self._progress_dir is not None:
            shutil.rmtree(self._progress_dir, ignore_errors=True)
        if self.options.shard is not None:
            self._finish_shard(session)
            return
        self._finish_account(session)
        if not self.records and self.account is None:
            return
        from harness.adjustment import adjust_records

        # the run is over, so every family is complete: store Holm/BH in each record
        pairs = sorted(
            zip(self.records, self._record_keys, strict=True), key=lambda p: p[0].sort_key()
        )
        self.records = adjust_records(rec for rec, _ in pairs)
        self._record_keys = [key for _, key in pairs]
        self._finish_junit(session)
        if self.store is None:
            return
        from harness.report.writer import write_report

        records = self.records
        try:
            self.store.rewrite(records)
            if self.account is not None:
                from harness.accounting import ACCOUNT_FILE

                atomic_write_text(
                    self.store.dir / ACCOUNT_FILE, self.account.model_dump_json(indent=1) + "\n"
                )
            path = write_report(
                records, self.store.dir, baseline=self.baseline, account=self.account
            )
            self.messages.append(f"gate report: {path}")
        except HarnessError as exc:
            self.messages.append(f"ERROR writing the gate report: {exc}")
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _finish_shard(self, session: pytest.Session) -> None:
        """``--shard``: no verdicts; write the manifest ``harness merge`` reads (exit 0 when
        every collected gate test recorded its outcomes)."""
        if not self._collect_fates():
            return
        from harness.shard_manifest import write_manifest

        try:
            code = write_manifest(
                self.options,
                phases=list(self.phases().values()),
                fates=list(self._fates.values()),
                deselected=self._deselected,
                errors=self._errors,
                files=self._shard_files,
            )
        except HarnessError as exc:
            self.messages.append(f"ERROR writing the shard manifest: {exc}")
            code = 2
        self.messages.append(
            f"shard {self.options.shard}: outcomes of {len(self._shard_files)} "
            "gate check(s) recorded; decide with `harness merge`"
        )
        if code:
            session.exitstatus = code

    def _collect_fates(self) -> bool:
        """Fold worker items into the fates (False: collect-only, nothing to account)."""
        self._read_worker_items()
        if self._account_dir is not None:
            shutil.rmtree(self._account_dir, ignore_errors=True)
        if self.config.option.collectonly:
            return False
        for nodeid, (phase, gate_id) in self._gate_items.items():
            fate = self._fates.get(nodeid)
            if fate is None:
                from harness.accounting import ItemFate

                self._fates[nodeid] = ItemFate(
                    nodeid=nodeid,
                    phase=phase,
                    gate=gate_id,
                    problem="never ran (the run stopped before this test, e.g. -x or a crash)",
                )
            else:
                fate.phase, fate.gate = phase, gate_id
        return True

    def _finish_account(self, session: pytest.Session) -> None:
        """Final status of every declared gate; the exit code comes from it (module docs)."""
        if not self._collect_fates():
            return
        items = [f for f in self._fates.values() if f.gate]
        selected = set(self.options.phases) or {f.phase for f in items}
        try:
            if self.options.all_phases and not self.options.phases and items:
                selected = set(self.phases())
            if not selected and not self._errors:
                return
            specs = list(self.phases().values())
        except HarnessError as exc:
            self.messages.append(f"ERROR loading the gate specs for the accounting: {exc}")
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            return
        from harness.accounting import account_run

        self.account = account_run(
            specs,
            selected=selected,
            records=self.records,
            items=items,
            deselected=self._deselected,
            harness_errors=self._errors,
        )
        session.exitstatus = self.account.exit_code(
            int(session.exitstatus), verdict_failures_only=not self._other_failures
        )

    def _finish_junit(self, session: pytest.Session) -> None:
        """Add the adjusted p-values and final verdicts to the junit.xml pytest just wrote."""
        if self.junit_path is None or not self.junit_path.exists():
            return
        from harness.report.junit import add_adjustment_properties, add_missing_gates

        # a record without a node id (a Gate built by hand) has no set we could name
        records = {k: r for k, r in zip(self._record_keys, self.records, strict=True) if k[0]}
        try:
            add_adjustment_properties(self.junit_path, records)
            if self.account is not None:
                add_missing_gates(self.junit_path, self.account)
        except HarnessError as exc:
            self.messages.append(f"ERROR adding adjusted gate properties to junit.xml: {exc}")
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        if not self.controller or not (self.records or self.messages or self.account):
            return
        from harness.report.terminal import render_account, render_text

        tr = terminalreporter
        tr.section("gate-harness")
        if self.records and not self.config.getoption("--no-gate-summary"):
            text = render_text(
                self.records,
                width=int(tr._tw.fullwidth),
                color=bool(getattr(tr, "hasmarkup", False)),
                baseline=self.baseline,
            )
            for line in text.rstrip("\n").splitlines():
                tr.write_line(line)
        if self.account is not None and not self.config.getoption("--no-gate-summary"):
            for line in render_account(self.account).splitlines():
                tr.write_line(line)
        for message in self.messages:
            tr.write_line(message)


def _mark_name(mark: pytest.Mark, what: str) -> str:
    if len(mark.args) != 1 or not isinstance(mark.args[0], str):
        raise HarnessError(
            f"@pytest.mark.{what} needs exactly one string argument, got {mark.args!r}; "
            f"write @pytest.mark.{what}('name')"
        )
    return mark.args[0]


def _phase_map(items: list[pytest.Item]) -> dict[str, str]:
    """node id → phase name for the collected tests that carry ``@pytest.mark.phase``."""
    out: dict[str, str] = {}
    for item in items:
        mark = item.get_closest_marker("phase")
        if mark is not None and len(mark.args) == 1 and isinstance(mark.args[0], str):
            out[item.nodeid] = mark.args[0]
    return out


def _item_gate(item: pytest.Item) -> tuple[str, str] | None:
    """(phase, gate id) a test item decides through the ``gate`` fixture, else None."""
    if "gate" not in getattr(item, "fixturenames", ()):
        return None
    phase = item.get_closest_marker("phase")
    if phase is None or len(phase.args) != 1 or not isinstance(phase.args[0], str):
        return None
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "gate" in callspec.params:
        return phase.args[0], str(callspec.params["gate"])
    mark = item.get_closest_marker("gate")
    if mark is not None and len(mark.args) == 1:
        return phase.args[0], str(mark.args[0])
    return None


def _problem(report: pytest.TestReport) -> str:
    """Why a gate item ended without a decision, from its failed/skipped report."""
    longrepr = report.longrepr
    if report.skipped:
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            return f"skipped: {longrepr[2].removeprefix('Skipped: ')}"
        return "skipped"
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or (str(longrepr).strip().splitlines() or [""])[-1]
    if report.when == "setup":
        return f"fixture failure before the test ran: {message}"
    if report.when == "teardown":
        return f"error at teardown: {message}"
    return f"errored before deciding: {message}"


def _duplicate_message(
    key: tuple[str, str, str, str], first: tuple[str, str], second: tuple[str, str]
) -> str:
    phase, gate_id, lane, subject = key
    return (
        f"gate '{phase}/{gate_id}' was checked twice for subject '{subject}' ({lane} lane): "
        f"first at {first[0]} ({first[1]}), again at {second[0]} ({second[1]}); one decision "
        "per gate and subject per run — checking again after looking at the data is optional "
        "stopping. Decide once, or declare the gate `sequential: true` and decide its looks on "
        "the anytime-valid estimate"
    )


def _monotonic_from_epoch(stamp: object) -> float | None:
    """A report's ``start`` (epoch seconds, set by the process that ran the step) on the
    controller's monotonic clock, which :class:`PhaseProgress` measures with; ``None`` when
    the report has no start (xdist's synthetic crash report has 0)."""
    if not isinstance(stamp, int | float) or stamp <= 0:
        return None
    return time.monotonic() - max(0.0, time.time() - float(stamp))


def _write_phase_map(directory: Path, worker: str, phase_of: dict[str, str]) -> None:
    """Atomically publish a worker's phase map (progress is best effort: never fail the run)."""
    with contextlib.suppress(HarnessError, OSError):
        atomic_write_text(directory / f"{worker}.json", json.dumps(phase_of))


def _write_json(directory: Path, worker: str, data: object) -> None:
    atomic_write_text(directory / f"{worker}.json", json.dumps(data))


def _junit_path(config: pytest.Config) -> Path | None:
    """Where pytest's junitxml plugin writes (``--junitxml``), resolved as it does at configure."""
    xmlpath = getattr(config.option, "xmlpath", None)  # absent with -p no:junitxml
    if not xmlpath:
        return None
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xmlpath)))))


def _has_cuda() -> bool:
    # no NVIDIA driver → no CUDA; saves importing torch (seconds) on CPU-only machines
    if not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _options(config: pytest.Config) -> HarnessOptions:
    gates_dir = config.getoption("--gates-dir")
    evidence_dir = config.getoption("--evidence-dir")
    baseline = config.getoption("--baseline")
    limit = config.getoption("--limit")
    if limit is not None and limit < 1:
        raise pytest.UsageError(f"--limit {limit}: must be a positive number of items")
    shard = config.getoption("--shard")
    if shard is not None:
        from harness.shard import ShardSpec

        try:
            ShardSpec.parse(shard)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from exc
        if not evidence_dir:
            raise pytest.UsageError(
                f"--shard {shard} needs --evidence-dir DIR: the shard's outcome files are its "
                "only product (harness run --shard sets it)"
            )
    return HarnessOptions(
        gates_dir=Path(gates_dir) if gates_dir else Path(config.rootpath) / "gates",
        phases=tuple(config.getoption("--phase") or ()),
        evidence_dir=Path(evidence_dir).resolve() if evidence_dir else None,
        baseline=Path(baseline) if baseline else None,
        inconclusive=str(config.getoption("--inconclusive")),
        sequential=bool(config.getoption("--sequential")),
        lane=str(config.getoption("--lane")),
        model=config.getoption("--model"),
        limit=limit,
        seed=int(config.getoption("--harness-seed")),
        all_phases=bool(config.getoption("--all-phases")),
        shard=shard,
    )


def _gate_options(options: HarnessOptions) -> GateOptions:
    from harness.evidence import Lane
    from harness.gate import GateOptions, InconclusiveMode
    from harness.shard import ShardSpec

    return GateOptions(
        evidence_dir=options.evidence_dir,
        inconclusive=InconclusiveMode(options.inconclusive),
        sequential=options.sequential,
        lane=Lane(options.lane),
        seed=options.seed,
        code_paths=(str(options.gates_dir),),
        shard=ShardSpec.parse(options.shard) if options.shard is not None else None,
    )


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def harness_options(request: pytest.FixtureRequest) -> HarnessOptions:
    """The gate-harness command-line settings (model, limit, lane, seed, ...)."""
    return _state(request.config).options


@pytest.fixture
def phase_spec(request: pytest.FixtureRequest) -> PhaseSpec:
    """The :class:`PhaseSpec` named by the test's ``@pytest.mark.phase``."""
    mark = request.node.get_closest_marker("phase")
    if mark is None:
        raise HarnessError(
            f"{request.node.nodeid}: the `phase_spec` fixture needs @pytest.mark.phase('name')"
        )
    return _state(request.config).phase(_mark_name(mark, "phase"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call-phase report (the ``gate`` fixture's teardown asks whether the test
    passed) and tag a HarnessError raised by the test, so the controller exits 2."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    gate_item = "gate" in getattr(item, "fixturenames", ())
    if gate_item and call.excinfo is not None and call.excinfo.errisinstance(HarnessError):
        message = f"{item.nodeid}: {call.excinfo.value}"
        if not any(k == _HARNESS_ERROR_PROPERTY for k, _ in report.user_properties):
            report.user_properties.append((_HARNESS_ERROR_PROPERTY, message))


@pytest.fixture
def gate(request: pytest.FixtureRequest, phase_spec: PhaseSpec) -> Iterator[Gate]:
    """The :class:`~harness.gate.Gate` this test decides (from markers or parametrization).

    A test that takes this fixture, passes and never calls ``gate.check`` (nor
    ``gate.no_claim``) errors at teardown: its gate would otherwise be silently undecided.
    """
    from harness.gate import Gate

    state = _state(request.config)
    gate_id: str | None = getattr(request, "param", None)
    if gate_id is None:
        mark = request.node.get_closest_marker("gate")
        if mark is None or len(mark.args) != 1:
            raise HarnessError(
                f"{request.node.nodeid}: cannot tell which gate to check; add "
                "@pytest.mark.gate('id') or let the `gate` fixture parametrize over the phase"
            )
        gate_id = str(mark.args[0])
    spec = phase_spec.gate(gate_id)
    bound = Gate(
        phase_spec,
        spec,
        node=request.node,
        options=_gate_options(state.options),
        claim=state.claim,
    )
    yield bound
    call = request.node.stash.get(_CALL_REPORT, None)
    if call is not None and call.passed and not bound.decisions and bound.no_claim_reason is None:
        pytest.fail(
            f"{request.node.nodeid}: the test takes the `gate` fixture for "
            f"'{phase_spec.phase}/{gate_id}' but never called gate.check(outcomes) — the gate "
            "would be undecided (MISSING); call gate.check, or gate.no_claim(reason, subject=...) "
            "for a control that makes no claim on it",
            pytrace=False,
        )


def evidence_from_user_properties(props: list[tuple[str, object]]) -> list[dict[str, Any]]:
    """Decode evidence JSON attached to a report (helper for tests and custom hooks)."""
    return [json.loads(str(v)) for k, v in props if k == _EVIDENCE_PROPERTY]
