"""Cache keys for the circuit-breaker phase computed from the code that produces the result.

A cached phase result or trained adapter is valid only for the code that made it:
the key carries the sha256 of the *source* of every producing module (computed,
never hand-bumped) and the versions of the libraries that shape the numbers.  The
phase and the trainer each get their key from one call here, so swapping in a
project-wide helper is a one-line change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Sequence
from typing import Any

__all__ = ["PHASE_MODULES", "TRAINER_MODULES", "code_key"]

#: Modules whose source decides the trained adapter.
TRAINER_MODULES: tuple[str, ...] = (
    "trainers.base",
    "trainers.circuit_breaker.config",
    "trainers.circuit_breaker.data",
    "trainers.circuit_breaker.format_audit",
    "trainers.circuit_breaker.trainer",
)

#: Modules whose source decides the whole phase result (data, audit, baseline, eval).
PHASE_MODULES: tuple[str, ...] = (
    *TRAINER_MODULES,
    "trainers.sft",
    "trainers.tiny",
    "trainers.circuit_breaker.coherence",
    "trainers.circuit_breaker.eval",
    "trainers.circuit_breaker.pipeline",
)

_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "numpy", "tokenizers")


def _source_sha256(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"cache key: module {module} has no source file")
    with open(spec.origin, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_key(modules: Sequence[str]) -> dict[str, Any]:
    """The producing code's identity: per-module source sha256 and library versions."""
    return {
        "sources": {m: _source_sha256(m) for m in modules},
        "libraries": {d: _version(d) for d in _LIBRARIES},
    }
