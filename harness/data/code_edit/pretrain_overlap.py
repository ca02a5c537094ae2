"""Held-out code-edit records that the base model may have seen in pretraining.

Why: the code-edit gates judge a model on dev/test edits.  If the base model's
pretraining corpus holds the code of a held-out record (for a bug fix, its
``post_code`` *is* the original function), the base starts with the answer and
the held-out split is not held out.  The check is the benchmark-contamination
check of :mod:`harness.data.contamination` (word 13-grams after
lm-evaluation-harness normalisation), with the held-out records as the
"benchmark": a record overlaps when its ``pre_code`` or its ``post_code`` shares
any 13-gram with any pretraining document (a text shorter than 13 words overlaps
when it occurs whole).  The same function drops such rows in the embedded
generator and counts them for the ``pretrain_overlap`` gate.

Known limits are those of the n-gram check: renamed identifiers and paraphrases
are missed, and a generic idiom longer than 13 words can match unrelated code
(the first matched n-gram is reported per record so a hit can be inspected).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.contamination import NGRAM_N, BenchItem, check_contamination

__all__ = [
    "HELDOUT_SPLITS",
    "OverlapReport",
    "RecordOverlap",
    "overlapping_ids",
    "pretrain_overlap",
]

#: the splits a model is judged on (train rows may come from anywhere)
HELDOUT_SPLITS: frozenset[Split] = frozenset({Split.DEV, Split.TEST})


@dataclass(frozen=True)
class RecordOverlap:
    """One held-out record and the pretraining 13-grams its code shares (0 when none)."""

    record_id: str
    split: str
    source: str
    matched: int
    example: str | None = None

    @property
    def overlaps(self) -> bool:
        return self.matched > 0


@dataclass(frozen=True)
class OverlapReport:
    """Per held-out record overlap, and the identity of the corpus it was checked against."""

    records: list[RecordOverlap]
    corpus_docs: int
    corpus_digest: str
    n: int
    method: str

    @property
    def overlapping(self) -> list[RecordOverlap]:
        return [r for r in self.records if r.overlaps]

    def summary(self) -> dict[str, object]:
        """The figures evidence records (the per-record list is the gate's outcomes)."""
        hits = self.overlapping
        return {
            "corpus_docs": self.corpus_docs,
            "corpus_digest": self.corpus_digest,
            "n": self.n,
            "method": self.method,
            "heldout_records": len(self.records),
            "overlapping_records": len(hits),
            "overlapping_ids": [r.record_id for r in hits[:20]],
        }


def pretrain_overlap(
    records: Iterable[NormalizedRecord],
    corpus: Iterable[str],
    *,
    splits: frozenset[Split] = HELDOUT_SPLITS,
    n: int = NGRAM_N,
) -> OverlapReport:
    """Overlap of every record in ``splits`` (pre and post code) with the ``corpus`` docs.

    The corpus is streamed once; its digest (length-prefixed sha256 over the documents
    in order, :func:`harness.data.contamination.corpus_digest`) names what was checked.
    """
    held = [r for r in records if r.split in splits]
    items: list[BenchItem] = []
    for r in held:
        items.append(BenchItem(f"{r.id}\x00pre", r.pre_code))
        items.append(BenchItem(f"{r.id}\x00post", r.post_code))
    report = check_contamination(corpus, items, bench="code_edit_heldout", n=n)
    by_item = {i.item_id: i for i in report.items}
    out = []
    for r in held:
        parts = [by_item[f"{r.id}\x00pre"], by_item[f"{r.id}\x00post"]]
        example = next((p.example for p in parts if p.example), None)
        out.append(
            RecordOverlap(r.id, r.split.value, r.source, sum(p.matched for p in parts), example)
        )
    return OverlapReport(out, report.train_docs, report.train_digest, n, report.method)


def overlapping_ids(report: OverlapReport) -> Sequence[str]:
    """Ids of the held-out records that share code with the corpus (the generator drops them)."""
    return [r.record_id for r in report.overlapping]
