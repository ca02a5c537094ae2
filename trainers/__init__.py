"""Trainer adapters and the local tiny-model builder.

Submodules are imported explicitly (``from trainers.tiny import build_tiny_model``)
so that ``import trainers`` never pulls in torch/transformers.
"""

from __future__ import annotations

__all__: list[str] = []
