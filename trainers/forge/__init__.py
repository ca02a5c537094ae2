"""Forge phase trainers (issue #19): evolutionary merging of the Cognate models.

* :mod:`trainers.forge.evolution` — the EvoMerge loop over :mod:`trainers.merge` with an
  injected fitness function (the caller scores on the *selection* split);
* :mod:`trainers.forge.charlm` — a character-level tiny Llama on the arithmetic word
  problems (training steps and teacher-forced exact match), the headroom probe for Cognate.
"""

from __future__ import annotations

__all__: list[str] = []
