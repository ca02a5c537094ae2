"""Quiet-STaR thought tokens for the forge champion (phase forge_reasoning).

See docs/forge_reasoning.md.

Modules: ``tokens`` (tokenizer, the 12 thought tokens), ``traces`` (baking data),
``sequences`` (token layouts), ``mixing`` (mixing head), ``thoughts`` (sampling and
answering), ``supervised`` (pretraining, baking), ``reinforce`` (the Quiet-STaR update),
``ablation`` (anti-theater conditions), ``stages``/``pipeline`` (the cached run),
``latency`` (per-session timing).
"""
