"""Quiet-STaR thought tokens for the forge champion (phase forge_reasoning).

See docs/forge_reasoning.md.

Modules: ``tokens`` (tokenizer, the 12 thought tokens), ``traces`` (baking data),
``sequences`` (token layouts), ``mixing`` (mixing head), ``thoughts`` (sampling and
answering), ``supervised`` (pretraining, baking), ``reinforce`` (the Quiet-STaR update),
``ablation`` (anti-theater conditions), ``stages``/``pipeline`` (the cached run),
``latency`` (per-session timing).

The package re-exports nothing: callers import the module they need (each has its own
``__all__``), so importing the package does not load torch.
"""

from __future__ import annotations

__all__: list[str] = []
