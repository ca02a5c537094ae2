"""The controller's end of a ``--shard`` run: the manifest ``harness merge`` starts from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from harness.accounting import ItemFate
from harness.atomic import atomic_write_text
from harness.shard import MANIFEST_FILE, ShardManifest, ShardSpec
from harness.spec import PhaseSpec

if TYPE_CHECKING:
    from harness.plugin import HarnessOptions

__all__ = ["manifest_options", "write_manifest"]


def manifest_options(options: HarnessOptions) -> dict[str, object]:
    """The run options every shard of one evaluation must share (merge compares them)."""
    return {
        "lane": options.lane,
        "model": options.model,
        "limit": options.limit,
        "seed": options.seed,
        "sequential": options.sequential,
        "phases": sorted(options.phases),
        "all_phases": options.all_phases,
    }


def write_manifest(
    options: HarnessOptions,
    *,
    phases: Sequence[PhaseSpec],
    fates: Sequence[ItemFate],
    deselected: Mapping[str, tuple[str, str]],
    errors: Sequence[str],
    files: Sequence[str],
) -> int:
    """Write ``shard-manifest.json``; return the shard run's exit code.

    0 when every collected gate test recorded its outcomes (or made no claim on
    purpose), 1 when one ended without them (skipped, errored, never ran), 2 on a
    harness error — a broken shard is visible in CI before anyone merges it.
    """
    assert options.shard is not None and options.evidence_dir is not None
    shard = ShardSpec.parse(options.shard)
    gated = [f for f in fates if f.gate]
    selected = set(options.phases) or {f.phase for f in gated}
    if options.all_phases and not options.phases and gated:
        selected = {p.phase for p in phases}
    manifest = ShardManifest(
        shard=shard.index,
        count=shard.count,
        options=manifest_options(options),
        phases=[p.model_dump(mode="json") for p in phases],
        selected=sorted(selected),
        fates=sorted(gated, key=lambda f: f.nodeid),
        deselected=dict(sorted(deselected.items())),
        harness_errors=list(errors),
        files=sorted(set(files)),
    )
    atomic_write_text(options.evidence_dir / MANIFEST_FILE, manifest.model_dump_json(indent=1))
    if errors:
        return 2
    if any(not f.checked and f.no_claim is None for f in gated):
        return 1
    return 0
