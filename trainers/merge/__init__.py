"""Model merging on state dicts: small pure functions, each tested against its definition.

Modules, one job each:

* :mod:`trainers.merge.tensor_ops` — per-parameter methods: linear, SLERP, TIES, DARE;
* :mod:`trainers.merge.layers` — layer-stack composition: Frankenmerge and DFS (layer path);
* :mod:`trainers.merge.combos` — the 8 combos (linear|SLERP) × (TIES|DARE) ×
  (Frankenmerge|DFS) as one composition, plus a registry that counts which combos ran;
* :mod:`trainers.merge.degenerate` — degenerate-merge detection and fallback.

A state dict here is ``dict[str, torch.Tensor]``; every function returns a new dict
and never mutates its inputs, so an evolution loop can cache parents safely.
"""

from __future__ import annotations

__all__: list[str] = []
