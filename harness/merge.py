"""``harness merge``: decide every gate once on the union of its shards.

The shards of one evaluation (``harness run --shard I/N``, see
:mod:`harness.shard`) are checked before anything is decided: every shard
1..N present exactly once, the same run options and gate specs, and per gate ×
subject × lane the same spec, data, model, code and harness digests, seed and
item universe; every item owned by the shard that recorded it, and every
position of the unsharded order covered exactly once.  Any mismatch is a
:class:`~harness.shard.ShardError` naming the field, the values and the shard
directories — a missing or duplicated shard is never decided as a smaller n.

Deciding reuses the decision layer unchanged: :meth:`harness.gate.Gate.evaluate`
(estimate → decide → sandbox-error guard → p-value, the path the pytest plugin
takes), then :func:`harness.adjustment.adjust_records` (Holm/BH over the merged
family) and :func:`harness.accounting.account_run`.  Outcomes are put back in
the unsharded order first, so the decision fields (estimate, decision, p-value,
adjustment) equal an unsharded run's byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.accounting import ACCOUNT_FILE, ItemFate, RunAccount, account_run
from harness.adjustment import adjust_records
from harness.atomic import atomic_write_text
from harness.evidence import EvidenceRecord, EvidenceStore, Lane, sha256_json
from harness.gate import Gate, GateOptions
from harness.outcomes import Outcome
from harness.shard import (
    MANIFEST_FILE,
    PositionMode,
    ShardError,
    ShardFile,
    ShardManifest,
    ShardSample,
    shard_of,
    unit_of,
    units_digest,
)
from harness.spec import PhaseSpec

__all__ = ["MergeResult", "Shard", "load_shards", "merge_shards"]

Key = tuple[str, str, str, str]  # (phase, gate, lane, subject)


@dataclass(frozen=True)
class Shard:
    """One shard directory and its manifest."""

    path: Path
    manifest: ShardManifest

    @property
    def label(self) -> str:
        return f"shard {self.manifest.shard}/{self.manifest.count} ({self.path})"


@dataclass(frozen=True)
class MergeResult:
    records: list[EvidenceRecord]
    account: RunAccount
    out: Path

    @property
    def exit_code(self) -> int:
        """0 every selected phase passed; 1 FAIL/INCONCLUSIVE/MISSING; 2 harness error."""
        return self.account.exit_code(0)


# --------------------------------------------------------------------------- shard set


def load_shards(dirs: Sequence[Path]) -> list[Shard]:
    """Read and cross-check the manifests: N agreed, every shard 1..N exactly once."""
    if not dirs:
        raise ShardError("harness merge: pass the shard directories (harness run --shard I/N)")
    shards = [Shard(Path(d), _read_manifest(Path(d))) for d in dirs]
    counts = {s.manifest.count for s in shards}
    if len(counts) > 1:
        raise ShardError(
            "shards disagree on N: "
            + ", ".join(f"{s.path}: {s.manifest.shard}/{s.manifest.count}" for s in shards)
            + "; merge the shards of one evaluation (same --shard I/N with one N)"
        )
    count = counts.pop()
    seen: dict[int, Shard] = {}
    for s in shards:
        first = seen.setdefault(s.manifest.shard, s)
        if first is not s:
            raise ShardError(
                f"shard {s.manifest.shard}/{count} given twice: {first.path} and {s.path}; a "
                "duplicated shard would count its items twice — pass each shard once"
            )
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise ShardError(
            f"shard(s) {names} missing (got {len(seen)} of {count}); a merge never decides on a "
            "smaller n — run the missing shard(s) (harness run --shard I/N) and pass every "
            "directory"
        )
    ordered = [seen[i] for i in range(1, count + 1)]
    for name in sorted({k for s in ordered for k in s.manifest.options}):
        _same(f"run option '{name}'", {s.label: s.manifest.options.get(name) for s in ordered})
    _same("gate specs (all phases)", {s.label: sha256_json(s.manifest.phases) for s in ordered})
    _same("selected phases", {s.label: s.manifest.selected for s in ordered})
    return ordered


def _read_manifest(path: Path) -> ShardManifest:
    file = path / MANIFEST_FILE
    try:
        return ShardManifest.model_validate_json(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShardError(
            f"{path}: no readable {MANIFEST_FILE} ({exc.strerror}); pass the --out directory of "
            "a finished `harness run --shard I/N`"
        ) from exc
    except ValueError as exc:
        raise ShardError(f"{file}: not a shard manifest ({exc}); was it edited?") from exc


def _same(what: str, values: dict[str, Any]) -> None:
    """All values equal, else an error naming each shard's value."""
    distinct = {repr(v) for v in values.values()}
    if len(distinct) > 1:
        listed = "; ".join(f"{who}: {v!r}" for who, v in values.items())
        raise ShardError(
            f"shards differ in {what} — {listed}; every shard of one evaluation must come from "
            "the same code, specs, data, model and options"
        )


# --------------------------------------------------------------------------- one gate


def _read_files(shards: Sequence[Shard]) -> dict[Key, list[tuple[Shard, ShardFile]]]:
    groups: dict[Key, list[tuple[Shard, ShardFile]]] = {}
    for s in shards:
        for rel in s.manifest.files:
            path = s.path / rel
            try:
                doc = ShardFile.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ShardError(
                    f"{path}: unreadable shard file ({exc}); re-run {s.label}"
                ) from exc
            if (doc.shard, doc.count) != (s.manifest.shard, s.manifest.count):
                raise ShardError(
                    f"{path}: written by shard {doc.shard}/{doc.count} but it is in the "
                    f"directory of {s.label}; do not mix shard directories"
                )
            key = (doc.phase, doc.gate, str(doc.lane), doc.subject)
            groups.setdefault(key, []).append((s, doc))
    for key, parts in groups.items():
        have = {s.manifest.shard for s, _ in parts}
        absent = [s.label for s in shards if s.manifest.shard not in have]
        if absent or len(parts) != len(shards):
            phase, gate, lane, subject = key
            raise ShardError(
                f"gate {phase}/{gate} (subject '{subject}', {lane} lane) has "
                f"{len(parts)} shard file(s) for {len(shards)} shards; missing in: "
                f"{', '.join(absent) or 'none (one shard recorded it twice)'} — re-run that shard"
            )
    return groups


_IDENTITY: tuple[tuple[str, Callable[[ShardFile], object]], ...] = (
    ("gate spec digest", lambda d: d.digests.spec),
    ("data digest", lambda d: d.digests.data),
    ("model identity", lambda d: d.digests.model),
    ("code digest", lambda d: d.digests.code),
    ("harness identity", lambda d: d.digests.harness),
    ("phase spec", lambda d: sha256_json(d.phase_spec)),
    ("seed", lambda d: d.seed),
    ("expected control verdict", lambda d: d.expect),
    ("test node id", lambda d: d.nodeid),
    ("sandbox", lambda d: d.sandbox),
    ("item universe", lambda d: (d.outcomes.mode, d.outcomes.total, d.outcomes.universe)),
    (
        "baseline item universe",
        lambda d: (
            None if d.baseline is None else (d.baseline.mode, d.baseline.total, d.baseline.universe)
        ),
    ),
)


def _merge_gate(
    key: Key, parts: Sequence[tuple[Shard, ShardFile]], store: EvidenceStore
) -> EvidenceRecord:
    phase_name, gate_id, lane, subject = key
    where = f"gate {phase_name}/{gate_id} (subject '{subject}', {lane} lane)"
    for what, get in _IDENTITY:
        _same(f"{where}: {what}", {s.label: get(doc) for s, doc in parts})
    first = parts[0][1]
    outcomes = _merge_sample([(s, d.outcomes) for s, d in parts], f"{where} outcomes")
    baseline = (
        None
        if first.baseline is None
        else _merge_sample([(s, d.baseline) for s, d in parts if d.baseline], f"{where} baseline")
    )
    phase = PhaseSpec.model_validate(first.phase_spec)
    gate = Gate(phase, phase.gate(gate_id), options=GateOptions(seed=first.seed, lane=Lane(lane)))
    estimate, decision, p = gate.evaluate(outcomes, baseline=baseline)  # the plugin's path
    extra = _merged_extra([d.extra for _, d in parts], len(parts))
    extra["outcomes_digest"] = sha256_json([o.to_dict() for o in outcomes])
    raw_rel: str | None
    if any(d.raw_output for _, d in parts):
        rows = [row for s, d in parts if d.raw_output for row in _read_rows(s.path / d.raw_output)]
        raw_rel = store.write_raw(phase_name, gate_id, subject, rows)
        extra["outcomes_file"] = store.write_raw(
            phase_name, gate_id, f"{subject}.outcomes", (o.to_dict() for o in outcomes)
        )
    else:
        raw_rel = store.write_raw(phase_name, gate_id, subject, (o.to_dict() for o in outcomes))
    return EvidenceRecord(
        phase=phase_name,
        gate=gate_id,
        gate_index=first.gate_index,
        nodeid=first.nodeid,
        subject=subject,
        lane=Lane(lane),
        expect=first.expect,
        metric=gate.spec.metric,
        direction=str(gate.spec.direction),
        unit=gate.spec.unit,
        spec=gate.spec.model_dump(mode="json"),
        alpha=gate.alpha,
        alpha_decision=gate.alpha_decision,
        family_size=gate.family_size,
        multiplicity=str(phase.multiplicity),
        estimate=estimate.to_dict(),
        decision=decision.to_dict(),
        p_value=p,
        sandbox=first.sandbox,
        digests=first.digests,
        started=min(d.started for _, d in parts),
        finished=max(d.finished for _, d in parts),
        raw_output=raw_rel,
        call_site=first.call_site,
        extra=extra,
    )


def _merge_sample(parts: Sequence[tuple[Shard, ShardSample]], where: str) -> list[Outcome]:
    """The unsharded outcome list: ownership checked, every position exactly once."""
    placed: dict[tuple[int, int], tuple[Outcome, Shard]] = {}
    sample = parts[0][1]
    for s, part in parts:
        count = s.manifest.count
        for pos, outcome in part.outcomes():
            owner = shard_of(unit_of(outcome), count)
            if owner != s.manifest.shard:
                raise ShardError(
                    f"{where}: item '{outcome.item_id}' is in {s.label} but belongs to shard "
                    f"{owner}/{count}; the shard files were edited or written with another N"
                )
            if sample.mode is PositionMode.UNIT and (
                sample.units is None
                or not 0 <= pos[0] < len(sample.units)
                or sample.units[pos[0]] != unit_of(outcome)
            ):
                raise ShardError(f"{where}: item '{outcome.item_id}' is not at its unit's place")
            if pos in placed:
                raise ShardError(
                    f"{where}: item '{outcome.item_id}' recorded twice ({placed[pos][1].label} "
                    f"and {s.label}); every item must be evaluated exactly once"
                )
            placed[pos] = (outcome, s)
    ordered = [placed[pos][0] for pos in sorted(placed)]
    if sample.mode is PositionMode.EXACT:
        gaps = sorted(set(range(sample.total)) - {p[0] for p in placed})
        if gaps or len(placed) != sample.total:
            raise ShardError(
                f"{where}: {len(gaps)} of {sample.total} items missing (first at position "
                f"{gaps[0] if gaps else '?'}); the shards do not cover the gate's items"
            )
        if units_digest([unit_of(o) for o in ordered]) != sample.universe:
            raise ShardError(f"{where}: the merged items differ from the ones the shards listed")
    return ordered


def _merged_extra(extras: Sequence[dict[str, Any]], count: int) -> dict[str, Any]:
    """Keys every shard agrees on are kept; the others are listed per shard."""
    keys = sorted({k for e in extras for k in e})
    out: dict[str, Any] = {}
    per_shard: dict[str, list[Any]] = {}
    for k in keys:
        values = [e.get(k) for e in extras]
        if all(v == values[0] for v in values):
            out[k] = values[0]
        else:
            per_shard[k] = values
    out["sharded"] = {"count": count, "per_shard_extra": per_shard}
    return out


def _read_rows(path: Path) -> list[dict[str, Any]]:
    import json

    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: unreadable raw-output file ({exc}); re-run that shard") from exc


# --------------------------------------------------------------------------- the run


def _merged_fates(shards: Sequence[Shard]) -> list[ItemFate]:
    """One fate per test item: decided only if every shard recorded it."""
    nodeids = sorted({f.nodeid for s in shards for f in s.manifest.fates})
    out = []
    for nodeid in nodeids:
        mine = [
            (s, next((f for f in s.manifest.fates if f.nodeid == nodeid), None)) for s in shards
        ]
        known = next(f for _, f in mine if f is not None)
        problems = [
            f"{s.label}: {'not collected' if f is None else f.problem}"
            for s, f in mine
            if f is None or (f.problem and not f.checked)
        ]
        out.append(
            ItemFate(
                nodeid=nodeid,
                phase=known.phase,
                gate=known.gate,
                checked=all(f is not None and f.checked for _, f in mine),
                no_claim=next((f.no_claim for _, f in mine if f is not None and f.no_claim), None),
                problem="; ".join(problems) or None,
            )
        )
    return out


def _fate_of(shard: Shard, nodeid: str) -> ItemFate | None:
    return next((f for f in shard.manifest.fates if f.nodeid == nodeid), None)


def merge_shards(dirs: Sequence[Path], out: Path) -> MergeResult:
    """Validate the shards, decide every gate, write evidence.jsonl, gate-report.md, junit.xml."""
    shards = load_shards(dirs)
    groups = _read_files(shards)
    out.mkdir(parents=True, exist_ok=True)
    store = EvidenceStore(out)
    merged = [_merge_gate(key, parts, store) for key, parts in sorted(groups.items())]
    records = adjust_records(sorted(merged, key=EvidenceRecord.sort_key))
    first = shards[0].manifest
    errors = [f"shard {s.manifest.shard}: {e}" for s in shards for e in s.manifest.harness_errors]
    deselected = {k: v for s in shards for k, v in s.manifest.deselected.items()}
    account = account_run(
        [PhaseSpec.model_validate(p) for p in first.phases],
        selected=first.selected,
        records=records,
        items=_merged_fates(shards),
        deselected=deselected,
        harness_errors=errors,
    )
    store.rewrite(records)
    atomic_write_text(out / ACCOUNT_FILE, account.model_dump_json(indent=1) + "\n")
    from harness.report.merge_junit import write_merged_junit
    from harness.report.writer import write_report

    header = [f"Merged from {len(shards)} shards: " + ", ".join(str(s.path) for s in shards)]
    write_report(records, out, account=account, header_lines=header)
    write_merged_junit(out / "junit.xml", records, account)
    return MergeResult(records=records, account=account, out=out)


def shard_summary(dirs: Iterable[Path]) -> list[str]:
    """One line per shard directory (for the CLI)."""
    return [
        f"{d}: shard {m.shard}/{m.count}, {len(m.files)} gate file(s)"
        for d in dirs
        for m in [_read_manifest(Path(d))]
    ]
