"""The one protocol every trainer adapter implements, and the artifact it returns.

Gates decide on *trained artifacts*, so an artifact carries what evidence needs:
where the weights are, a content digest (the evidence record's model digest),
the config digest that produced it (the cache key), and the per-step log file.
Adapters cache by config digest so a rerun of the main job reuses training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.atomic import atomic_write_json

__all__ = [
    "Artifact",
    "TrainerAdapter",
    "config_digest",
    "directory_digest",
    "write_json_atomic",
]


@dataclass(frozen=True)
class Artifact:
    """A trained model (or adapter) on disk plus what produced it.

    ``digest`` hashes the saved files (it changes when the weights change);
    ``config_digest`` hashes the training configuration (it is the cache key);
    ``log_path`` is the per-step JSONL training log, when the trainer keeps one.
    """

    path: Path
    digest: str
    config_digest: str
    log_path: Path | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "digest": self.digest,
            "config_digest": self.config_digest,
            "log_path": None if self.log_path is None else str(self.log_path),
            "metrics": dict(self.metrics),
            "cached": self.cached,
        }


@runtime_checkable
class TrainerAdapter(Protocol):
    """Train from a config and return the :class:`Artifact`; reuse a cached one if present."""

    def train(self, config: Any) -> Artifact: ...


def config_digest(payload: Mapping[str, Any]) -> str:
    """Stable sha256 of a JSON-able mapping (sorted keys), used as a cache key."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def directory_digest(path: Path) -> str:
    """sha256 over every file's relative name and bytes below ``path`` (sorted)."""
    h = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(file.relative_to(path)).encode("utf-8"))
        h.update(b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so readers never see half a file (:func:`harness.atomic.atomic_write_json`)."""
    atomic_write_json(path, payload)
