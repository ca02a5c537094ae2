"""Evidence records and the crash-safe store they are written to.

An :class:`EvidenceRecord` is the durable answer to "why did this gate pass?":
the estimate, the decision, which lane and subject produced it, and sha256
digests of the model, data, gate spec and code that were involved.  Records are
appended to ``evidence.jsonl`` one line at a time under a file lock with an
``fsync``, so an interrupted run leaves only whole records (at worst a torn
*last* line, which :func:`read_evidence` detects and reports).  Whole files
(reports, raw outputs) are written to a temporary file and ``os.replace``-d into
place, so a reader never sees half a report.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.atomic import atomic_write_bytes, atomic_write_new, atomic_write_text, durable_append
from harness.atomic import atomic_write_jsonl as write_jsonl_atomic
from harness.decision import Decision, Verdict
from harness.errors import EvidenceError
from harness.stats.estimate import Estimate

__all__ = [
    "EVIDENCE_FILE",
    "Adjustment",
    "Digests",
    "EvidenceLog",
    "EvidenceRecord",
    "EvidenceStore",
    "Lane",
    "atomic_write_bytes",
    "atomic_write_text",
    "code_digest",
    "harness_identity",
    "read_evidence",
    "repo_digest",
    "sha256_bytes",
    "sha256_file",
    "sha256_json",
    "write_jsonl_atomic",
    "write_new_file",
]

#: File name of the evidence log inside an evidence directory.
EVIDENCE_FILE = "evidence.jsonl"

# 2: optional ``adjustment`` (the phase's multiplicity correction); schema-1 rows still read.
_SCHEMA_VERSION = 2


class Lane(StrEnum):
    """Where the subject's outputs came from; only ``real`` counts as a real PASS."""

    REAL = "real"
    REPLAY = "replay"
    CONTROL = "control"


class Digests(BaseModel):
    """sha256 identities (``sha256:<hex>`` or ``git:<sha>``) of what produced a record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    data: str | None = None
    spec: str | None = None
    code: str | None = None  # the repo holding the gates and tests: git HEAD (+dirty hash)
    harness: str | None = None  # the installed gate-harness: version + its own code identity


class Adjustment(BaseModel):
    """The phase-level multiplicity correction of one record, as applied at the end of the run.

    A test item decides at the Bonferroni level α/m on its own; once every gate
    of the family (phase × lane × subject) has a p-value, Holm (or BH) adjusts
    them together and can only upgrade an INCONCLUSIVE gate to PASS.  Storing
    the result next to the decision makes evidence.jsonl self-sufficient: a
    reader sees the adjusted p-value, the level it was compared with and the
    final verdict without re-running the correction.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str  # "holm" or "bh" (the phase's ``multiplicity``)
    family_size: int  # m: the phase's gates with sampling error (absent ones count as p = 1)
    family_tested: int  # how many of them produced a p-value in this family
    rank: int  # 1-based position of this p-value in the family's ascending order
    p_adjusted: float  # compare with ``alpha``: p_adjusted ≤ alpha ⇔ rejected by the procedure
    alpha: float  # the gate's nominal one-sided level
    alpha_step: float  # this rank's critical level: Holm α/(m − rank + 1), BH α·rank/m
    upgraded: bool  # INCONCLUSIVE at α/m, PASS after the correction
    verdict: Verdict  # the verdict after the correction (== the decision's unless upgraded)
    #: the highest tier met after the correction: the decision's, or for an upgraded gate the
    #: tier its PASS needs (:func:`harness.adjustment.upgraded_tier`).  ``None`` only in
    #: evidence written before this field existed; :func:`harness.adjustment.adjust_records`
    #: re-derives such a family, so a report never shows an upgraded PASS with tier "none"
    tier: str | None = None


class EvidenceRecord(BaseModel):
    """One gate decided on one subject in one lane.

    ``estimate`` and ``decision`` are the ``to_dict()`` forms of
    :class:`~harness.stats.estimate.Estimate` and :class:`~harness.decision.Decision`
    so a report can be rebuilt from the JSONL alone, without the gate YAML.
    ``spec`` is the gate spec as decided (thresholds can change between runs).
    ``adjustment`` is filled by the controller at the end of the run (``None``
    while the run is in progress, for ``multiplicity: none``, and for gates
    without a p-value).
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    schema_version: int = _SCHEMA_VERSION
    phase: str
    gate: str
    gate_index: int = 0
    nodeid: str | None = None
    subject: str = "model"
    lane: Lane = Lane.REAL
    expect: Verdict | None = None
    metric: str
    direction: str
    unit: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    alpha: float  # the gate's nominal one-sided level
    alpha_decision: float  # the Bonferroni level the test item decided at (alpha / family_size)
    family_size: int = 1
    multiplicity: str = "holm"
    estimate: dict[str, Any]
    decision: dict[str, Any]
    p_value: float | None = None
    adjustment: Adjustment | None = None
    sandbox: str | None = None
    digests: Digests = Field(default_factory=Digests)
    started: datetime
    finished: datetime
    raw_output: str | None = None  # relative to the evidence directory
    call_site: str | None = None  # "file:line" of the gate.check call that made this record
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        """The test item's own decision (at the Bonferroni level α/m)."""
        return Verdict(self.decision["verdict"])

    @property
    def final_verdict(self) -> Verdict:
        """The verdict after the phase's multiplicity correction (the decision's without one)."""
        return self.verdict if self.adjustment is None else self.adjustment.verdict

    @property
    def final_tier(self) -> str:
        """The tier met after the phase's multiplicity correction (the decision's without one)."""
        adj = self.adjustment
        if adj is not None and adj.tier is not None:
            return adj.tier
        return str(self.decision.get("tier", "none"))

    def estimate_obj(self) -> Estimate:
        return Estimate.from_dict(self.estimate)

    def decision_obj(self) -> Decision:
        return Decision.from_dict(self.decision)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity used to match a record against a baseline run."""
        return (self.phase, self.gate, str(self.lane), self.subject)

    @property
    def control_ok(self) -> bool | None:
        """For controls: did the verdict match what the control must produce?"""
        return None if self.expect is None else self.verdict == self.expect

    def sort_key(self) -> tuple[str, int, str, int, str, str]:
        """Deterministic order (independent of xdist scheduling) for files and reports."""
        lane_rank = {Lane.REAL: 0, Lane.REPLAY: 1, Lane.CONTROL: 2}[self.lane]
        return (self.phase, lane_rank, self.subject, self.gate_index, self.gate, self.nodeid or "")


# --------------------------------------------------------------------------- digests


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Digest of a file's bytes, or of a directory's files (relative names + bytes, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(file.relative_to(path).as_posix().encode() + b"\0")
                _feed(h, file, chunk)
        else:
            _feed(h, path, chunk)
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot digest ({exc.strerror}); check the path") from exc
    return "sha256:" + h.hexdigest()


def _feed(h: Any, file: Path, chunk: int) -> None:
    with file.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)


def sha256_json(obj: Any) -> str:
    """Digest of a JSON-able object in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode("utf-8"))


# suites/ holds decision-relevant constants (minimum request counts, subject lists)
_CODE_DIRS = ("harness", "sandbox", "trainers", "suites")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Identity of the code that decided the gates.

    In a git checkout: ``git:<HEAD>``, plus ``+dirty.<sha256 prefix>`` over the
    uncommitted diff and untracked files of the packages when the tree is
    modified (so two runs on different uncommitted code never share an
    identity).  Outside git: ``sha256:`` over the packages' ``.py`` files.
    Cached per process; every xdist worker computes the same value from the
    same checkout, so evidence is identical with and without ``-n``.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        head = _git(root, "rev-parse", "HEAD")
        if head.returncode == 0 and head.stdout.strip():
            sha = head.stdout.decode().strip()
            diff = _git(root, "diff", "HEAD", "--binary", "--", *_CODE_DIRS)
            others = _git(root, "ls-files", "--others", "--exclude-standard", "--", *_CODE_DIRS)
            if diff.returncode == 0 and others.returncode == 0:
                h = hashlib.sha256(diff.stdout)
                untracked = sorted(n for n in others.stdout.decode().splitlines() if n)
                for name in untracked:
                    h.update(name.encode() + b"\0")
                    with contextlib.suppress(OSError):
                        h.update((root / name).read_bytes())
                dirty = bool(diff.stdout.strip() or untracked)
                return f"git:{sha}" + (f"+dirty.{h.hexdigest()[:16]}" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    h = hashlib.sha256()
    for package in _CODE_DIRS:
        base = root / package
        for file in sorted(base.rglob("*.py")) if base.is_dir() else []:
            h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return "sha256:" + h.hexdigest()


@functools.lru_cache(maxsize=1)
def harness_identity() -> str:
    """'gate-harness <version> (<code identity>)': which gate-harness decided, kept apart
    from the user's repo (:func:`repo_digest`) so neither hides the other."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("gate-harness")
    except PackageNotFoundError:
        ver = "(not installed)"
    return f"gate-harness {ver} ({code_digest()})"


@functools.lru_cache(maxsize=64)
def repo_digest(paths: tuple[str, ...]) -> str:
    """Identity of the repo that holds ``paths`` (the gate YAML and the test files).

    In git: ``git:<HEAD>`` of that repo, plus ``+dirty.<sha256 prefix>`` over the
    uncommitted diff and untracked files *of those paths* — the gates and tests the
    decision depended on.  Outside git: ``sha256:`` over the files themselves.
    """
    existing = [Path(p).resolve() for p in paths if Path(p).exists()]
    if not existing:
        return code_digest()
    anchor = existing[0] if existing[0].is_dir() else existing[0].parent
    try:
        top = _git(anchor, "rev-parse", "--show-toplevel")
        head = _git(anchor, "rev-parse", "HEAD")
        if top.returncode == 0 and head.returncode == 0 and head.stdout.strip():
            root = Path(top.stdout.decode().strip())
            inside = [str(p) for p in existing if p.is_relative_to(root)]
            diff = _git(root, "diff", "HEAD", "--binary", "--", *inside)
            others = _git(root, "ls-files", "--others", "--exclude-standard", "--", *inside)
            if diff.returncode == 0 and others.returncode == 0:
                h = hashlib.sha256(diff.stdout)
                untracked = sorted(n for n in others.stdout.decode().splitlines() if n)
                for name in untracked:
                    h.update(name.encode() + b"\0")
                    with contextlib.suppress(OSError):
                        h.update((root / name).read_bytes())
                dirty = bool(diff.stdout.strip() or untracked)
                sha = head.stdout.decode().strip()
                return f"git:{sha}" + (f"+dirty.{h.hexdigest()[:16]}" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    h = hashlib.sha256()
    for path in sorted(existing):
        h.update(sha256_file(path).encode())
    return "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------- atomic writes


# ``atomic_write_bytes``/``atomic_write_text``/``write_jsonl_atomic`` are re-exported from
# :mod:`harness.atomic`, the one place files are published atomically; ``write_new_file``
# (claim the first free name) is :func:`harness.atomic.atomic_write_new`.
write_new_file = atomic_write_new


# --------------------------------------------------------------------------- store


class EvidenceStore:
    """An evidence directory: ``evidence.jsonl`` plus ``raw/`` and report files.

    Appends take an inter-process file lock so several writers (the xdist
    controller, a nightly job re-using a directory) never interleave lines.
    """

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / EVIDENCE_FILE
        self._lock = FileLock(str(self.dir / f".{EVIDENCE_FILE}.lock"))

    def _ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EvidenceError(
                f"{self.dir}: cannot create evidence directory ({exc.strerror}); "
                "pass a writable --evidence-dir"
            ) from exc

    def append(self, record: EvidenceRecord) -> None:
        """Append one whole record (one line), flushed and fsync-ed before the lock is released."""
        self._ensure_dir()
        line = record.model_dump_json() + "\n"
        with self._lock:
            durable_append(self.path, line)

    def rewrite(self, records: Sequence[EvidenceRecord]) -> None:
        """Replace the log with ``records`` in one atomic step (used for the sorted final file)."""
        self._ensure_dir()
        text = "".join(r.model_dump_json() + "\n" for r in records)
        with self._lock:
            atomic_write_text(self.path, text)

    def raw_path(self, phase: str, gate: str, subject: str, *, index: int = 1) -> Path:
        """``raw/<phase>/<gate>--<subject>.jsonl``; the ``index``-th file gets ``~<index>``.

        ``~`` cannot occur in a sanitised subject, so a suffixed name never
        collides with another subject's first file.
        """
        suffix = "" if index == 1 else f"~{index}"
        return self.dir / "raw" / phase / f"{gate}--{_safe(subject)}{suffix}.jsonl"

    def write_raw(
        self, phase: str, gate: str, subject: str, rows: Iterable[Mapping[str, Any]]
    ) -> str:
        """Write raw outputs to a *new* file; return its path relative to the evidence directory.

        A second check of the same gate and subject (in one test, another test,
        another xdist worker, or an earlier run into the same directory) never
        replaces an earlier file: it gets the next free ``~2``, ``~3`` ... name,
        and the evidence record stores the exact name returned here.  The file
        appears whole or not at all (see :func:`write_new_file`).
        """
        lines = [json.dumps(dict(row), sort_keys=True, default=str) + "\n" for row in rows]
        data = "".join(lines).encode("utf-8")
        path = write_new_file(lambda index: self.raw_path(phase, gate, subject, index=index), data)
        return path.relative_to(self.dir).as_posix()

    def read(self) -> EvidenceLog:
        return read_evidence(self.path)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "_"


@dataclass(frozen=True)
class EvidenceLog:
    """What :func:`read_evidence` found: the whole records, and a torn last line if any."""

    path: Path
    records: list[EvidenceRecord]
    torn_line: int | None = None
    warnings: list[str] = field(default_factory=list)


def read_evidence(path: str | Path) -> EvidenceLog:
    """Read an evidence JSONL file.

    A torn *last* line (the signature of a run killed mid-write) is skipped and
    reported in ``warnings``; a bad line anywhere else means the file was edited
    or corrupted, and raises :class:`EvidenceError` naming the line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / EVIDENCE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvidenceError(
            f"{path}: cannot read evidence ({exc.strerror}); pass an evidence.jsonl file "
            "or the report directory that holds one"
        ) from exc
    lines = text.split("\n")
    complete_end = text.endswith("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records: list[EvidenceRecord] = []
    torn: int | None = None
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = number == len(lines)
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if last and not complete_end:
                torn = number
                warnings.append(
                    f"{path}:{number}: last line is incomplete ({len(line)} bytes, {exc.msg}); "
                    "the run was probably interrupted while writing — skipped it, "
                    "all earlier records are whole"
                )
                break
            raise EvidenceError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "evidence files are append-only — restore the file or re-run the gates"
            ) from exc
        try:
            records.append(EvidenceRecord.model_validate(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise EvidenceError(
                f"{path}:{number}: field '{where}' {err['msg'].lower()} "
                f"(value {err.get('input')!r}); this is not a gate-harness evidence record "
                f"of schema {_SCHEMA_VERSION}"
            ) from exc
    return EvidenceLog(path=path, records=records, torn_line=torn, warnings=warnings)


def now_utc() -> datetime:
    return datetime.now(UTC)
