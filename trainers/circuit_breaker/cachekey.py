"""Which code and libraries the circuit-breaker caches are keyed on.

A cached phase result, Ds filter, evaluation, trained adapter or sweep row is
valid only for the code that made it.  Every one of them is keyed by the
project's one cache-key helper, :func:`harness.cachekey.cache_key`, given the
module lists below (it digests their *source*, read from disk, so nothing is
hand-bumped) and ``LIBRARIES`` (installed versions).  This module only names
the producers; it composes no key itself.
"""

from __future__ import annotations

__all__ = ["LIBRARIES", "PHASE_MODULES", "SWEEP_MODULES", "TRAINER_MODULES"]

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
