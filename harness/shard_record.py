"""The shard side of ``gate.check`` under ``--shard I/N``: write outcomes, decide nothing.

Kept out of :mod:`harness.gate` so the gate module stays about deciding; the
gate calls :func:`record_shard` instead of estimating when a shard is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.atomic import atomic_write_text
from harness.decision import Verdict
from harness.evidence import Digests, EvidenceStore, Lane, now_utc
from harness.outcomes import Outcome
from harness.shard import (
    ShardError,
    ShardFile,
    ShardSpec,
    json_safe_extra,
    shard_file_path,
    split_outcomes,
)
from harness.stats.estimate import Estimate

if TYPE_CHECKING:
    from harness.gate import Gate

__all__ = ["record_shard"]


def _shard_and_dir(gate: Gate, *, where: str, sequential: bool) -> tuple[ShardSpec, Path]:
    """The gate's ``--shard`` and ``--evidence-dir``, or a ShardError saying what is missing."""
    shard = gate.options.shard
    if shard is None:
        raise ShardError(f"{where}: record_shard called without --shard")
    if gate.options.evidence_dir is None:
        raise ShardError(
            f"{where}: --shard {shard} needs --evidence-dir (harness run --shard sets it); the "
            "shard's outcomes are its only product"
        )
    if sequential:
        raise ShardError(
            f"{where}: a sequential look (gate.check(estimate=...)) cannot be sharded — its "
            "stopping time depends on every item seen so far; run --sequential without --shard"
        )
    return shard, gate.options.evidence_dir


def record_shard(
    gate: Gate,
    outcomes: Sequence[Outcome],
    *,
    baseline: Sequence[Outcome] | None,
    lane: Lane,
    subject: str,
    expect: Verdict | None,
    digests: Digests,
    sandbox: str | None,
    raw_outputs: Iterable[Mapping[str, Any]] | None,
    extra: Mapping[str, Any] | None,
    estimate: Estimate | None,
    site: str,
) -> str:
    """Write this shard's part of the gate's outcomes; return the file (relative path)."""
    where = f"gate {gate.phase.phase}/{gate.id}"
    shard, evidence_dir = _shard_and_dir(gate, where=where, sequential=estimate is not None)
    store = EvidenceStore(evidence_dir)
    sample = split_outcomes(outcomes, shard, universe=gate.shard_universe, what=where)
    base = None if baseline is None else split_outcomes(baseline, shard, what=f"{where} baseline")
    raw_rel = None
    if raw_outputs is not None:
        raw_rel = store.write_raw(gate.phase.phase, gate.id, subject, list(raw_outputs))
    doc = ShardFile(
        shard=shard.index,
        count=shard.count,
        phase=gate.phase.phase,
        gate=gate.id,
        gate_index=gate.index,
        subject=subject,
        lane=lane,
        expect=expect,
        phase_spec=gate.phase.model_dump(mode="json"),
        seed=gate.options.seed,
        digests=digests,
        sandbox=sandbox,
        nodeid=gate.node.nodeid if gate.node is not None else None,
        call_site=site,
        started=gate.started,
        finished=now_utc(),
        outcomes=sample,
        baseline=base,
        raw_output=raw_rel,
        extra=json_safe_extra(extra or {}),
    )
    path = shard_file_path(store.dir, gate.phase.phase, gate.id, subject, str(lane))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, doc.model_dump_json() + "\n")
    return path.relative_to(store.dir).as_posix()
