"""Processed code-edit data on disk: ``<root>/{train,dev,test}/<source>.jsonl`` + metadata.

The root is configurable (``root=``); the default is ``<data_dir>/code_edit/processed``
from :mod:`harness.settings`, so ``HARNESS_DATA_DIR`` moves it with every other
data set.  Files are written atomically; reading validates every row and names
file, line and field on the first bad one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from harness.atomic import atomic_write_json, atomic_write_jsonl
from harness.data.code_edit.schema import DatasetMetadata, NormalizedRecord, Split
from harness.data.schemas import read_jsonl, validation_message
from harness.errors import DataValidationError
from harness.settings import get_settings

__all__ = [
    "METADATA_FILE",
    "DatasetStats",
    "dataset_stats",
    "default_root",
    "read_processed",
    "schema_violations",
    "write_processed",
]

METADATA_FILE = "metadata.json"
_FIX = "fix the row, or rebuild the processed data with its loader or generator"
_MISSING = (
    "build the processed data first — `python -m trainers.code_edit.generate` (the embedded "
    "set) or `harness data code-edit ingest SOURCE FILE` (a published one) — or point "
    "--root / HARNESS_DATA_DIR at it"
)


def default_root() -> Path:
    """``<data_dir>/code_edit/processed`` (``HARNESS_DATA_DIR`` moves it)."""
    return get_settings().data_dir / "code_edit" / "processed"


def _safe_name(source: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)
    return name.strip(".") or "source"


def write_processed(
    records: Iterable[NormalizedRecord],
    *,
    root: Path | None = None,
    name: str,
    generator: str,
    seed: int | None = None,
    sources: dict[str, str] | None = None,
    near_duplicate_threshold: float = 0.9,
) -> DatasetMetadata:
    """Write one JSONL per (split, source) and ``metadata.json`` with the stats; return it."""
    base = root or default_root()
    rows = list(records)
    groups: dict[tuple[Split, str], list[NormalizedRecord]] = defaultdict(list)
    for r in rows:
        groups[(r.split, r.source)].append(r)
    for (split, source), group in sorted(groups.items()):
        path = base / split.value / f"{_safe_name(source)}.jsonl"
        atomic_write_jsonl(path, (g.model_dump(mode="json") for g in group))
    stats = dataset_stats(rows)
    meta = DatasetMetadata(
        name=name,
        generator=generator,
        seed=seed,
        sources=sources or {},
        counts=stats.counts,
        languages=stats.languages,
        total_bytes=stats.total_bytes,
        records_digest=stats.digest,
        near_duplicate_threshold=near_duplicate_threshold,
    )
    atomic_write_json(base / METADATA_FILE, meta.model_dump(mode="json"))
    return meta


def read_processed(
    *, root: Path | None = None, splits: Sequence[Split] = tuple(Split)
) -> list[NormalizedRecord]:
    """Every validated row under ``root`` for ``splits``; a row under the wrong split fails."""
    base = root or default_root()
    if not base.is_dir():
        raise DataValidationError(f"{base}: no processed code-edit data here; {_MISSING}")
    out: list[NormalizedRecord] = []
    for split in splits:
        for path in sorted((base / split.value).glob("*.jsonl")):
            for lineno, row in enumerate(
                read_jsonl(path, NormalizedRecord, fix=_FIX, missing=_MISSING), start=1
            ):
                if row.split is not split:
                    raise DataValidationError(
                        f"{path}: row {lineno} id={row.id!r} has field 'split'={row.split.value!r} "
                        f"but lives under {split.value}/; {_FIX}"
                    )
                out.append(row)
    return out


class DatasetStats:
    """Counts per split and source, languages, bytes, and a digest of the content hashes."""

    __slots__ = ("counts", "digest", "languages", "total_bytes")

    def __init__(
        self,
        counts: dict[str, dict[str, int]],
        languages: dict[str, int],
        total_bytes: int,
        digest: str,
    ) -> None:
        self.counts = counts
        self.languages = languages
        self.total_bytes = total_bytes
        self.digest = digest

    def split_total(self, split: Split) -> int:
        """Rows in ``split`` across sources."""
        return sum(self.counts.get(split.value, {}).values())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for evidence and ``metadata.json``)."""
        return {
            "counts": self.counts,
            "split_totals": {s.value: self.split_total(s) for s in Split},
            "languages": self.languages,
            "total_bytes": self.total_bytes,
            "records_digest": self.digest,
        }


def dataset_stats(records: Iterable[NormalizedRecord]) -> DatasetStats:
    """Per-split/per-source counts, language counts, UTF-8 size of the code and text fields."""
    counts: dict[str, dict[str, int]] = {s.value: {} for s in Split}
    languages: dict[str, int] = defaultdict(int)
    total = 0
    hashes: list[str] = []
    for r in records:
        per = counts[r.split.value]
        per[r.source] = per.get(r.source, 0) + 1
        languages[r.language] += 1
        total += sum(
            len(t.encode("utf-8")) for t in (r.instruction, r.pre_code, r.post_code, r.tests or "")
        )
        hashes.append(r.content_hash)
    digest = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return DatasetStats(
        {k: dict(sorted(v.items())) for k, v in counts.items()},
        dict(sorted(languages.items())),
        total,
        digest,
    )


def schema_violations(*, root: Path | None = None) -> list[str]:
    """Every invalid row under ``root`` (file:line: field problem), not just the first.

    The ``schema_violations`` count is what a data gate reads; :func:`read_processed`
    stops at the first error instead, which is what a trainer wants.
    """
    base = root or default_root()
    problems: list[str] = []
    for split in Split:
        for path in sorted((base / split.value).glob("*.jsonl")):
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                problems.extend(_row_problems(path, lineno, line, split))
    return problems


def _row_problems(path: Path, lineno: int, line: str, split: Split) -> list[str]:
    where = f"{path}:{lineno}"
    try:
        row = NormalizedRecord.model_validate_json(line)
    except ValidationError as exc:
        return validation_message(where, exc, fix=_FIX).splitlines()[:-1]
    if row.split is not split:
        return [f"{where}: field 'split'={row.split.value!r} but the file is under {split.value}/"]
    return []
