"""Per-item outcomes: the raw material every gate decides from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome"]


@dataclass(frozen=True)
class Outcome:
    """One evaluated item.

    ``value`` is 0/1 for binary metrics (pass, slip, correct) and a real number
    for continuous ones (latency seconds, similarity).  ``cluster`` groups items
    that are not independent (e.g. the n samples of one HumanEval task) so
    estimators can resample whole clusters.  ``raw`` keeps whatever the subject
    produced (completion text, sandbox status) for the raw-output file.
    """

    item_id: str
    value: float
    cluster: str | None = None
    latency_s: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "value": self.value,
            "cluster": self.cluster,
            "latency_s": self.latency_s,
            "raw": dict(self.raw),
        }
