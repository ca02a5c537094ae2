"""Model backends behind one :class:`Generator` protocol, plus the cache and the replay lane.

Heavy libraries (torch, transformers, httpx) are imported inside the backends
that need them, so ``import harness.backends`` stays cheap.
"""

from __future__ import annotations

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    Lane,
    Latency,
    Message,
    ModelIdentity,
    Role,
    SamplingParams,
    ToolCall,
    check_one_to_one,
)
from harness.backends.hf import HFGenerator

__all__ = [
    "Generation",
    "GenerationRequest",
    "Generator",
    "HFGenerator",
    "Lane",
    "Latency",
    "Message",
    "ModelIdentity",
    "Role",
    "SamplingParams",
    "ToolCall",
    "check_one_to_one",
]
