"""The sandbox contract: programs in, typed results out, in input order.

Everything that executes untrusted code (a Docker pool, a local rlimit
fallback, a future remote service) implements :class:`Sandbox`. Callers only
ever see :class:`ExecResult`, whose ``status`` is decided in one place
(:func:`classify`) from the raw facts a driver reports, so every
implementation types the same behaviour the same way.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import SandboxError
from harness.settings import env_option

__all__ = [
    "DEFAULT_MAX_SOURCE_BYTES",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_OUTPUT_CAP",
    "DEFAULT_TIMEOUT_S",
    "ExecResult",
    "ExecStatus",
    "Program",
    "RawOutcome",
    "Sandbox",
    "classify",
    "default_pool_size",
    "rejected_result",
    "rejection",
    "unrun_result",
    "validate_limits",
]

DEFAULT_OUTPUT_CAP = 64 * 1024
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 512
#: programs (source + stdin, UTF-8) above this are ``rejected`` without running
DEFAULT_MAX_SOURCE_BYTES = 4 * 1024 * 1024

_ids = itertools.count()


class ExecStatus(enum.StrEnum):
    """Typed outcome of one program.

    ``passed``: ran its code to the end, exited 0 in time, and the driver
    received the run's completion proof (see docs/sandbox.md). ``incomplete``:
    exited 0 *without* that proof — it left early (``sys.exit``, ``os._exit``,
    ``exec``, a forked parent) or used interpreter introspection that voids the
    proof; a failure, kept distinct so reviewers see the attempt. ``rejected``:
    the source (or stdin) cannot be run as given — not encodable as UTF-8 (a
    lone surrogate) or larger than the sandbox's ``max_source_bytes`` — so it
    never reached a worker; the program's own failure, with the reason. ``failed``:
    exited non-zero (uncaught exception, failed assert, ``sys.exit(1)``). ``timeout``: wall-clock or
    CPU-time limit hit. ``oom``: memory limit hit (``MemoryError`` escaped or
    the kernel OOM-killed it). ``error``: the program died abnormally
    (signal such as SIGSEGV, stopped itself, killed itself). ``sandbox_error``:
    the sandbox, not the program, failed (lost twice, could not start).
    """

    PASSED = "passed"
    INCOMPLETE = "incomplete"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMEOUT = "timeout"
    OOM = "oom"
    ERROR = "error"
    SANDBOX_ERROR = "sandbox_error"


def _default_id() -> str:
    return f"p{next(_ids)}"


@dataclass(frozen=True, slots=True)
class Program:
    """One untrusted Python program; it *passes* when its code runs to its end and it exits 0.

    "Runs to its end" is proven by the driver's completion token (docs/sandbox.md),
    never inferred from the exit status: ``sys.exit(0)`` halfway is ``incomplete``.

    For HumanEval the source is ``prompt + completion + test +
    f"check({entry_point})"``. ``id`` is echoed back in the result so callers
    can join results to items even after re-ordering layers.
    """

    source: str
    stdin: str = ""
    id: str = field(default_factory=_default_id)

    def digest(self) -> str:
        """sha256 of source and stdin (for evidence, not identity)."""
        h = hashlib.sha256()
        h.update(self.source.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(self.stdin.encode("utf-8", "surrogatepass"))
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Typed result of one program run in a sandbox."""

    program_id: str
    status: ExecStatus
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    duration_s: float
    sandbox_kind: str
    image_id: str | None = None
    signal: int | None = None
    detail: str = ""
    attempts: int = 1

    @property
    def passed(self) -> bool:
        return self.status is ExecStatus.PASSED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for evidence (raw outputs kept, status as its value)."""
        return {
            "program_id": self.program_id,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "duration_s": self.duration_s,
            "sandbox_kind": self.sandbox_kind,
            "image_id": self.image_id,
            "detail": self.detail,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class RawOutcome:
    """What a driver observed, before typing (see :func:`classify`)."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    memory_error: bool
    oom_killed: bool
    stopped: bool
    spawn_error: str = ""
    #: the driver received this run's completion token (the code ran to its end)
    proof: bool = False
    #: the program triggered an event that destroys the token (introspection, trace hooks)
    tampered: bool = False


# SIGXCPU is what RLIMIT_CPU's soft limit delivers; treat it as the time limit.
_SIGXCPU = 24
_SIGKILL = 9


def classify(raw: RawOutcome) -> tuple[ExecStatus, str]:
    """Map raw facts to a status and a one-line human reason.

    Order matters: a program killed at its deadline is a timeout even though
    it died of SIGKILL; an OOM kill is SIGKILL too but is reported as oom.
    Only exit code 0 *with* the completion proof is a pass, so printing a
    "success marker", or exiting 0 before the hidden test finished, is never
    mistaken for a pass.
    """
    if raw.spawn_error:
        return ExecStatus.SANDBOX_ERROR, f"could not start program: {raw.spawn_error}"
    if raw.timed_out:
        return ExecStatus.TIMEOUT, "wall-clock limit reached; process group killed"
    if raw.signal == _SIGXCPU:
        return ExecStatus.TIMEOUT, "CPU-time limit reached (SIGXCPU)"
    if raw.oom_killed:
        return ExecStatus.OOM, "killed by the kernel OOM killer (memory cgroup limit)"
    if raw.memory_error and raw.exit_code != 0:
        return ExecStatus.OOM, "MemoryError: address-space limit reached"
    if raw.stopped:
        return ExecStatus.ERROR, "program stopped itself (SIGSTOP/SIGTSTP); killed"
    if raw.signal is not None:
        return ExecStatus.ERROR, f"killed by signal {raw.signal}"
    if raw.exit_code == 0 and raw.proof:
        return ExecStatus.PASSED, "ran to its end (completion proof received), exit code 0"
    if raw.exit_code == 0 and raw.tampered:
        return ExecStatus.INCOMPLETE, (
            "exit code 0 but no completion proof: the program used interpreter introspection "
            "or trace hooks (gc, ctypes, settrace, process memory), which void the proof"
        )
    if raw.exit_code == 0:
        return ExecStatus.INCOMPLETE, (
            "exit code 0 but no completion proof: the program left before its code ran to the "
            "end (sys.exit/SystemExit, os._exit, exec, a forked parent, or a thread/atexit exit)"
        )
    if raw.exit_code is None:
        return ExecStatus.SANDBOX_ERROR, "driver reported neither exit code nor signal"
    return ExecStatus.FAILED, f"exit code {raw.exit_code}"


def rejection(program: Program, *, max_source_bytes: int) -> str:
    """Why ``program`` cannot be run as given ("" when it can).

    Model output is hostile input: a lone surrogate or an 80 MiB source must cost
    that program a typed result, never the worker or the run.
    """
    size = 0
    for name, text in (("source", program.source), ("stdin", program.stdin)):
        try:
            size += len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return (
                f"{name} is not encodable as UTF-8: {exc.reason} at character {exc.start} "
                f"({text[exc.start : exc.start + 1]!a})"
            )
    if size > max_source_bytes:
        return (
            f"source + stdin is {size} bytes, above the sandbox's max_source_bytes="
            f"{max_source_bytes}"
        )
    return ""


def unrun_result(
    program: Program,
    *,
    kind: str,
    image_id: str | None,
    status: ExecStatus,
    detail: str,
    attempts: int,
) -> ExecResult:
    """Typed result for a program that produced no output of its own (rejected or lost)."""
    return ExecResult(
        program_id=program.id,
        status=status,
        exit_code=None,
        stdout="",
        stderr="",
        truncated=False,
        duration_s=0.0,
        sandbox_kind=kind,
        image_id=image_id,
        detail=detail,
        attempts=attempts,
    )


def rejected_result(program: Program, *, kind: str, image_id: str | None, why: str) -> ExecResult:
    """Typed result for a program that never ran because its input was unusable."""
    return unrun_result(
        program,
        kind=kind,
        image_id=image_id,
        status=ExecStatus.REJECTED,
        detail=f"not run: {why}",
        attempts=0,
    )


def validate_limits(*, timeout_s: float, memory_mb: int, output_cap: int) -> None:
    """Refuse limits that would make results meaningless, naming the fix."""
    if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
        raise SandboxError(
            f"timeout_s={timeout_s!r} is invalid: pass a finite number of seconds > 0"
        )
    if not isinstance(memory_mb, int) or memory_mb < 32:
        raise SandboxError(
            f"memory_mb={memory_mb!r} is invalid: pass an int ≥ 32 (a Python child needs ~20 MiB)"
        )
    if not isinstance(output_cap, int) or output_cap < 0:
        raise SandboxError(f"output_cap={output_cap!r} is invalid: pass an int ≥ 0 (bytes)")


def default_pool_size() -> int:
    """This worker's CPU share: usable CPUs divided among pytest-xdist workers (≥ 1).

    Every xdist worker builds its own pool; sizing each by the full CPU count would
    oversubscribe the machine by the number of workers.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        workers = int(env_option("PYTEST_XDIST_WORKER_COUNT") or "1")
    except ValueError:
        workers = 1
    return max(1, cpus // max(1, workers))


class Sandbox(abc.ABC):
    """Runs untrusted programs; results are returned in input order, one each.

    Implementations must never drop or duplicate a result: a program the
    sandbox could not run gets an ``ExecStatus.SANDBOX_ERROR`` result.
    """

    #: label recorded in evidence: "docker" (isolated) or "local" (weaker).
    kind: str = "abstract"

    @property
    @abc.abstractmethod
    def parallelism(self) -> int:
        """How many programs may run at once (workers in the pool)."""

    @property
    def image_id(self) -> str | None:
        """Identity of the execution environment (Docker image id), if any."""
        return None

    @abc.abstractmethod
    def run(
        self,
        programs: Sequence[Program],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> list[ExecResult]:
        """Run every program; return one result per program in input order."""

    def run_one(
        self,
        program: Program | str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> ExecResult:
        """Single-program helper around :meth:`run`."""
        prog = Program(program) if isinstance(program, str) else program
        return self.run([prog], timeout_s=timeout_s, memory_mb=memory_mb, output_cap=output_cap)[0]

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release workers; safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """Evidence fields: which sandbox produced a result and how strong it is."""
        return {
            "sandbox_kind": self.kind,
            "image_id": self.image_id,
            "parallelism": self.parallelism,
        }

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
