"""Hardened execution of untrusted (model-written) Python programs.

``Sandbox.run(programs, *, timeout_s, memory_mb)`` returns one typed
:class:`ExecResult` per program, in input order. :class:`DockerSandbox` is the
isolated implementation (warm pool of hardened containers);
:class:`LocalSandbox` is a weaker rlimit-only fallback, labelled ``local`` in
evidence. ``run_battery`` is the hostile conformance check every
implementation must pass (``harness sandbox check``).

Heavy submodules (docker SDK) load lazily so ``import sandbox`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    DEFAULT_MEMORY_MB,
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT_S,
    ExecResult,
    ExecStatus,
    Program,
    Sandbox,
)

if TYPE_CHECKING:
    from .battery import BatteryReport, run_battery
    from .docker_pool import DockerSandbox
    from .image import build_image, ensure_image
    from .local import LocalSandbox

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_OUTPUT_CAP",
    "DEFAULT_TIMEOUT_S",
    "BatteryReport",
    "DockerSandbox",
    "ExecResult",
    "ExecStatus",
    "LocalSandbox",
    "Program",
    "Sandbox",
    "build_image",
    "ensure_image",
    "run_battery",
]

_LAZY = {
    "DockerSandbox": "docker_pool",
    "LocalSandbox": "local",
    "BatteryReport": "battery",
    "run_battery": "battery",
    "build_image": "image",
    "ensure_image": "image",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{mod}", __name__), name)
