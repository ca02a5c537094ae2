"""Outcomes for the code-edit data gates, read from a processed data directory.

Each gate reads the data as written on disk (not the generator's in-memory
rows), so a gate passes only on what a trainer would actually load:

* ``schema_violations`` — one outcome per invalid row (value 1), or one value-0
  outcome naming how many rows were checked when there are none;
* ``split_leakage`` — one outcome per leaking pair (exact or near duplicate in
  two splits), or one value-0 outcome with the number of pairs compared;
* ``<split>_count`` — one outcome per valid row of that split (``of: n``);
* ``action_mismatches`` — per row with a ground-truth ``action``: 1 when applying
  it to ``pre_code`` with the real ast-grep binary does not give ``post_code``;
* ``pretrain_overlap`` — per dev/test row: 1 when its pre- or post-code shares a
  word 13-gram with the base model's pretraining corpus;
* ``shape_gaps`` — per held-out (source, rule, shape) cell: 1 when no train row has
  that cell (:func:`harness.data.code_edit.shape.shape_parity`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.data.code_edit.apply import ApplyError, apply_action
from harness.data.code_edit.leakage import DEFAULT_THRESHOLD, check_leakage
from harness.data.code_edit.pretrain_overlap import OverlapReport, pretrain_overlap
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.shape import ShapeParity, shape_parity
from harness.data.code_edit.store import read_processed, schema_violations
from harness.outcomes import Outcome

__all__ = [
    "action_outcomes",
    "leakage_outcomes",
    "load_rows",
    "pretrain_overlap_outcomes",
    "shape_gap_outcomes",
    "split_count_outcomes",
    "violation_outcomes",
]


def violation_outcomes(root: Path) -> list[Outcome]:
    """One value-1 outcome per schema problem under ``root`` (value-0 sentinel when clean)."""
    problems = schema_violations(root=root)
    if problems:
        return [
            Outcome(item_id=f"violation/{i}", value=1.0, raw={"problem": p})
            for i, p in enumerate(problems)
        ]
    rows = sum(
        1
        for s in Split
        for f in (root / s.value).glob("*.jsonl")
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    return [Outcome(item_id="all_rows", value=0.0, raw={"rows_checked": rows})]


def leakage_outcomes(
    rows: list[NormalizedRecord], *, threshold: float = DEFAULT_THRESHOLD
) -> list[Outcome]:
    """One value-1 outcome per leaking pair across splits (value-0 sentinel when none)."""
    report = check_leakage(rows, threshold=threshold)
    if report.pairs:
        return [Outcome(item_id=f"{p.a_id}~{p.b_id}", value=1.0, raw=vars(p)) for p in report.pairs]
    return [
        Outcome(
            item_id="no_leakage",
            value=0.0,
            raw={"pairs_compared": report.compared, "threshold": threshold},
        )
    ]


def split_count_outcomes(rows: list[NormalizedRecord], split: Split) -> list[Outcome]:
    """One outcome per row of ``split`` (the gate counts items: ``params.of = n``)."""
    return [Outcome(item_id=r.id, value=1.0, cluster=r.source) for r in rows if r.split is split]


def load_rows(root: Path) -> list[NormalizedRecord]:
    """All rows under ``root`` (raises naming file/line/field on the first invalid one)."""
    return read_processed(root=root)


def action_outcomes(rows: list[NormalizedRecord]) -> list[Outcome]:
    """Per row with an action: 0 when the binary turns ``pre_code`` into ``post_code``, else 1."""
    out: list[Outcome] = []
    for r in rows:
        if r.action is None:
            continue
        try:
            got: str | None = apply_action(r.action, r.pre_code)
            error = ""
        except ApplyError as exc:
            got, error = None, str(exc)
        bad = got != r.post_code
        raw = {"error": error} if error else {"reproduced": not bad}
        out.append(Outcome(item_id=r.id, value=float(bad), cluster=r.source, raw=raw))
    return out


def pretrain_overlap_outcomes(
    rows: list[NormalizedRecord], corpus: Iterable[str]
) -> tuple[list[Outcome], OverlapReport]:
    """Per dev/test row: 1 when its code shares a 13-gram with the pretraining ``corpus``."""
    report = pretrain_overlap(rows, corpus)
    outcomes = [
        Outcome(
            item_id=r.record_id,
            value=float(r.overlaps),
            cluster=r.source,
            raw={"split": r.split, "matched_ngrams": r.matched, "example": r.example},
        )
        for r in report.records
    ]
    return outcomes, report


def shape_gap_outcomes(rows: list[NormalizedRecord]) -> tuple[list[Outcome], ShapeParity]:
    """Per held-out (source, rule, shape) cell: 1 when the train split has no row of it
    (value-0 sentinel when no source has both train and held-out rows)."""
    report = shape_parity(rows)
    gaps = set(report.gaps)
    outcomes = [
        Outcome(
            item_id=cell.label(),
            value=float(cell in gaps),
            cluster=cell.source,
            raw={s.value: report.counts.get(s.value, {}).get(cell, 0) for s in Split},
        )
        for cell in report.heldout_cells()
    ]
    if not outcomes:
        outcomes = [Outcome(item_id="no_heldout_cells", value=0.0, raw={"checked": 0})]
    return outcomes, report
