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
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.decision import Decision, Verdict
from harness.errors import EvidenceError
from harness.stats.estimate import Estimate

__all__ = [
    "EVIDENCE_FILE",
    "Digests",
    "EvidenceLog",
    "EvidenceRecord",
    "EvidenceStore",
    "Lane",
    "atomic_write_bytes",
    "atomic_write_text",
    "code_digest",
    "read_evidence",
    "sha256_bytes",
    "sha256_file",
    "sha256_json",
    "write_jsonl_atomic",
]

#: File name of the evidence log inside an evidence directory.
EVIDENCE_FILE = "evidence.jsonl"

_SCHEMA_VERSION = 1


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
    code: str | None = None


class EvidenceRecord(BaseModel):
    """One gate decided on one subject in one lane.

    ``estimate`` and ``decision`` are the ``to_dict()`` forms of
    :class:`~harness.stats.estimate.Estimate` and :class:`~harness.decision.Decision`
    so a report can be rebuilt from the JSONL alone, without the gate YAML.
    ``spec`` is the gate spec as decided (thresholds can change between runs).
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
    sandbox: str | None = None
    digests: Digests = Field(default_factory=Digests)
    started: datetime
    finished: datetime
    raw_output: str | None = None  # relative to the evidence directory
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.decision["verdict"])

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


_CODE_DIRS = ("harness", "sandbox", "trainers")


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


# --------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory + ``os.replace``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise EvidenceError(
            f"{path}: cannot write ({exc.strerror}); check the directory is writable"
        ) from exc
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSON lines atomically (raw outputs, rewritten evidence logs)."""
    lines = [json.dumps(dict(row), sort_keys=True, default=str) + "\n" for row in rows]
    return atomic_write_text(path, "".join(lines))


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
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def rewrite(self, records: Sequence[EvidenceRecord]) -> None:
        """Replace the log with ``records`` in one atomic step (used for the sorted final file)."""
        self._ensure_dir()
        text = "".join(r.model_dump_json() + "\n" for r in records)
        with self._lock:
            atomic_write_text(self.path, text)

    def raw_path(self, phase: str, gate: str, subject: str) -> Path:
        return self.dir / "raw" / phase / f"{gate}--{_safe(subject)}.jsonl"

    def write_raw(
        self, phase: str, gate: str, subject: str, rows: Iterable[Mapping[str, Any]]
    ) -> str:
        """Write raw outputs atomically; return the path relative to the evidence directory."""
        path = self.raw_path(phase, gate, subject)
        write_jsonl_atomic(path, rows)
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
