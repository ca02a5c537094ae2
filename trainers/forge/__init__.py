"""Forge phase trainers (issue #19): evolutionary merging of the Cognate models.

* :mod:`trainers.forge.evolution` — the EvoMerge loop over :mod:`trainers.merge` with an
  injected fitness function (the caller scores on the *selection* split).
"""

from __future__ import annotations

__all__: list[str] = []
