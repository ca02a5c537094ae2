"""Model backends behind one :class:`Generator` protocol, plus the cache and the replay lane.

Heavy libraries (torch, transformers) are imported inside the backends that
need them, so ``import harness.backends`` stays cheap.  Typical use::

    from harness.backends import open_generator, GenerationRequest, SamplingParams
    gen = open_generator("models/tiny-code", cache_dir=".cache/generations")
    outs = gen.generate([GenerationRequest(request_id="t0", prompt="def add(a, b):",
                                           sampling=SamplingParams(max_tokens=64))])
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
from harness.backends.cache import CacheMode, CachingGenerator, GenerationCache, generation_key
from harness.backends.factory import open_generator
from harness.backends.hf import HFGenerator
from harness.backends.local_server import LocalServer, serve
from harness.backends.openai_compat import OpenAICompatGenerator
from harness.backends.replay import ReplayGenerator, record

__all__ = [
    "CacheMode",
    "CachingGenerator",
    "Generation",
    "GenerationCache",
    "GenerationRequest",
    "Generator",
    "HFGenerator",
    "Lane",
    "Latency",
    "LocalServer",
    "Message",
    "ModelIdentity",
    "OpenAICompatGenerator",
    "ReplayGenerator",
    "Role",
    "SamplingParams",
    "ToolCall",
    "check_one_to_one",
    "generation_key",
    "open_generator",
    "record",
    "serve",
]
