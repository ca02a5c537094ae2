"""Sharded evaluation: which shard owns an item, and the per-shard outcome files.

``harness run --shard I/N`` evaluates a deterministic 1/N of every gate's items
and writes their outcomes — never a verdict — so ``harness merge`` can decide
each gate once on the union (:mod:`harness.merge`).  An item belongs to shard
``1 + (sha256(unit) mod N)`` where the *unit* is the outcome's cluster key when
it has one (all samples of a HumanEval task stay together) and its item id
otherwise: the assignment depends only on the id, so it is the same on every
machine, in every rerun and under any xdist scheduling.

Two ways a suite can be sharded:

* **shard-aware** — the suite calls :meth:`harness.gate.Gate.shard_items` on its
  dataset and evaluates only the items it returns (the compute really is 1/N);
  each outcome is stored with its unit's position in the full, ordered list
  of units the suite passed in.
* **any other suite** — it evaluates everything and ``gate.check`` keeps this
  shard's outcomes, stored with their exact positions in the full list (a
  correct result, no compute saved).

Either way the merge restores the unsharded order, so estimators that depend
on order (bootstrap streams under a fixed seed) give the same numbers.  A
gate's ``baseline`` outcomes are always split by ``gate.check`` (exact
positions); suites pass the full baseline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from harness.accounting import ItemFate
from harness.decision import Verdict
from harness.errors import HarnessError
from harness.evidence import Digests, Lane, sha256_json
from harness.outcomes import Outcome

__all__ = [
    "MANIFEST_FILE",
    "SHARD_DIR",
    "PositionMode",
    "ShardError",
    "ShardFile",
    "ShardManifest",
    "ShardSample",
    "ShardSpec",
    "shard_file_path",
    "shard_of",
    "split_outcomes",
    "unit_of",
    "units_digest",
]

#: File (in a shard's evidence directory) that says which shard it is and what it collected.
MANIFEST_FILE = "shard-manifest.json"
#: Directory (in a shard's evidence directory) holding one JSON file per gate × subject × lane.
SHARD_DIR = "shards"

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


class ShardError(HarnessError):
    """A shard option, a shard file or a set of shards that cannot be merged."""


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        """``"2/3"`` → shard 2 of 3; an error names the value and the accepted form."""
        match = _SPEC.match(text)
        if match is None:
            raise ShardError(f"--shard {text!r}: write it as I/N, e.g. --shard 2/3 (1 ≤ I ≤ N)")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 1 <= index <= count:
            raise ShardError(f"--shard {text}: need 1 ≤ I ≤ N and N ≥ 1 (got I={index}, N={count})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, unit: str) -> bool:
        return shard_of(unit, self.count) == self.index

    def take(self, items: Iterable[T], *, key: Callable[[T], str]) -> list[T]:
        """The items this shard evaluates, in their original order."""
        return [item for item in items if self.owns(key(item))]


def shard_of(unit: str, count: int) -> int:
    """The 1-based shard of ``unit`` among ``count``: a hash of the id, stable everywhere."""
    digest = hashlib.sha256(unit.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def unit_of(outcome: Outcome) -> str:
    """What is assigned to a shard: the cluster (e.g. a task's samples) or the item itself."""
    return outcome.cluster if outcome.cluster is not None else outcome.item_id


def units_digest(units: Sequence[str]) -> str:
    """Identity of an ordered list of units (every shard of one gate must agree on it)."""
    return sha256_json(list(units))


class PositionMode(StrEnum):
    """How a shard's outcome positions refer to the unsharded order (module docstring)."""

    EXACT = "exact"  # index in the full outcome list the suite produced
    UNIT = "unit"  # (index of the unit in the suite's ordered universe, order within the unit)


class ShardSample(BaseModel):
    """One shard's part of a gate's outcomes (or baseline outcomes)."""

    model_config = ConfigDict(extra="forbid")

    mode: PositionMode
    total: int  # EXACT: length of the full list; UNIT: number of units in the universe
    universe: str  # units_digest of the full ordered unit list (EXACT: one unit per outcome)
    units: list[str] | None = None  # UNIT only: the ordered universe (ownership is re-checked)
    rows: list[dict[str, Any]] = Field(default_factory=list)  # Outcome.to_dict() + "pos"

    def outcomes(self) -> list[tuple[tuple[int, int], Outcome]]:
        out = []
        for row in self.rows:
            pos = row["pos"]
            out.append(
                (
                    (int(pos[0]), int(pos[1])),
                    Outcome(
                        item_id=str(row["item_id"]),
                        value=float(row["value"]),
                        cluster=row.get("cluster"),
                        latency_s=row.get("latency_s"),
                        raw=dict(row.get("raw") or {}),
                    ),
                )
            )
        return out


class ShardFile(BaseModel):
    """Everything ``harness merge`` needs to decide one gate × subject × lane (no verdict)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    shard: int
    count: int
    phase: str
    gate: str
    gate_index: int
    subject: str
    lane: Lane
    expect: Verdict | None = None
    phase_spec: dict[str, Any]  # the PhaseSpec as decided (merge needs no YAML)
    seed: int
    digests: Digests
    sandbox: str | None = None
    nodeid: str | None = None
    call_site: str | None = None
    started: datetime
    finished: datetime
    outcomes: ShardSample
    baseline: ShardSample | None = None
    raw_output: str | None = None  # relative to the shard's evidence directory
    extra: dict[str, Any] = Field(default_factory=dict)


class ShardManifest(BaseModel):
    """A shard run's identity and what its controller saw (written at session end)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    shard: int
    count: int
    options: dict[str, Any]  # lane, model, limit, seed, sequential: must agree across shards
    phases: list[dict[str, Any]]  # every PhaseSpec of the gates directory
    selected: list[str]
    fates: list[ItemFate] = Field(default_factory=list)
    deselected: dict[str, tuple[str, str]] = Field(default_factory=dict)
    harness_errors: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)  # shard files, relative to the directory


def shard_file_path(directory: Path, phase: str, gate: str, subject: str, lane: str) -> Path:
    """``shards/<phase>/<gate>/<subject>.<lane>.json`` (one decision key, one file)."""

    def safe(name: str) -> str:
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "_"

    return directory / SHARD_DIR / safe(phase) / safe(gate) / f"{safe(subject)}.{lane}.json"


def split_outcomes(
    outcomes: Sequence[Outcome],
    shard: ShardSpec,
    *,
    universe: Sequence[str] | None = None,
    what: str = "outcomes",
) -> ShardSample:
    """This shard's outcomes with their positions in the unsharded order.

    ``universe`` (from :meth:`Gate.shard_items`) is the ordered list of units the
    suite sharded itself: every outcome must belong to one of this shard's units.
    Without it ``outcomes`` is the full list and is filtered here.
    """
    if universe is None:
        units = [unit_of(o) for o in outcomes]
        rows = [
            {**o.to_dict(), "pos": [i, 0]}
            for i, (o, u) in enumerate(zip(outcomes, units, strict=True))
            if shard.owns(u)
        ]
        return ShardSample(
            mode=PositionMode.EXACT, total=len(outcomes), universe=units_digest(units), rows=rows
        )
    index = _unit_index(universe)
    seq: dict[str, int] = {}
    rows = []
    for o in outcomes:
        unit = unit_of(o)
        if unit not in index or not shard.owns(unit):
            raise ShardError(
                f"{what}: item '{o.item_id}' (unit '{unit}') is not one of the items "
                f"gate.shard_items gave shard {shard}; evaluate only the returned items"
            )
        rows.append({**o.to_dict(), "pos": [index[unit], seq.setdefault(unit, 0)]})
        seq[unit] += 1
    return ShardSample(
        mode=PositionMode.UNIT,
        total=len(universe),
        universe=units_digest(universe),
        units=list(universe),
        rows=rows,
    )


def _unit_index(universe: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, unit in enumerate(universe):
        if unit in index:
            raise ShardError(
                f"gate.shard_items: unit '{unit}' occurs twice (positions {index[unit]} and {i}); "
                "each item needs a unique key (its cluster key or item id)"
            )
        index[unit] = i
    return index


def json_safe_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` as plain JSON (suites put numpy scalars and paths in it)."""
    import json

    return dict(json.loads(json.dumps(dict(extra), default=str)))
