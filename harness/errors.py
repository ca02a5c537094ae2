"""One exception hierarchy for the whole project.

Every error a user can hit derives from :class:`HarnessError`, so callers (and
the CLI) can catch one type and print a message that already says what is wrong
and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AtomicWriteError",
    "BackendError",
    "DataValidationError",
    "EvidenceError",
    "HarnessError",
    "ReplayMiss",
    "SandboxError",
    "SandboxUnavailable",
    "SpecError",
    "StatsError",
    "TrainerError",
]


class HarnessError(Exception):
    """Root of every error raised on purpose by gate-harness."""


class SpecError(HarnessError):
    """A gate/phase YAML file is malformed; the message names file, gate, field, value and fix."""


class StatsError(HarnessError):
    """A statistical routine got input it cannot answer for (e.g. pass@k with n < k)."""


class EvidenceError(HarnessError):
    """Evidence could not be written or read back whole."""


class AtomicWriteError(EvidenceError):
    """A file or directory could not be written atomically (see :mod:`harness.atomic`).

    A subclass of :class:`EvidenceError` because evidence and reports are the
    first things written this way and callers already catch that.
    """


class DataValidationError(HarnessError):
    """A dataset row is invalid; the message names file, line, field and value."""


class SandboxError(HarnessError):
    """The code-execution sandbox failed (not the program under test)."""


class SandboxUnavailable(SandboxError):
    """The requested sandbox cannot run here (e.g. no Docker daemon); says how to fix it."""


class BackendError(HarnessError):
    """A model backend failed in a way retries could not fix."""


class ReplayMiss(BackendError):
    """The replay lane has no recorded generation for a request (contract drift)."""


class TrainerError(HarnessError):
    """A trainer adapter was misconfigured or training diverged."""
