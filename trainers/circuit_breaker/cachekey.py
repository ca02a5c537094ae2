"""Cache keys for the circuit-breaker phase computed from the code that produces the result.

A cached phase result, evaluation or trained adapter is valid only for the code
that made it: the key carries the digest of the *source* of every producing
module (computed, never hand-bumped) and the versions of the libraries that
shape the numbers, through the project's one cache-key helper
(:mod:`harness.cachekey`).  The phase and the trainer each get their code key
from one call here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.cachekey import library_versions, source_digest

__all__ = ["LIBRARIES", "PHASE_MODULES", "SWEEP_MODULES", "TRAINER_MODULES", "code_key"]

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

#: Modules whose source decides a dev-split sweep row: the phase's, plus the sweep's own
#: (its train-and-score step and knob handling).  Kept apart from PHASE_MODULES so editing
#: the sweep does not invalidate the phase's cached result.
SWEEP_MODULES: tuple[str, ...] = (*PHASE_MODULES, "trainers.circuit_breaker.sweep")

#: Libraries whose versions shape the numbers (kernels, tokenisation, LoRA, training loop).
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "numpy", "tokenizers")


def code_key(modules: Sequence[str]) -> dict[str, Any]:
    """The producing code's identity: per-module source digest and library versions."""
    return {"sources": source_digest(modules), "libraries": library_versions(LIBRARIES)}
