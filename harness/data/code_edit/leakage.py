"""Split leakage: the same edit (or a near copy) in two splits.

Exact leakage is two rows in different splits with one ``content_hash``.
Near leakage is a pair whose whitespace-normalised ``pre_code + post_code``
texts have ``difflib.SequenceMatcher(autojunk=False).ratio() >= threshold``
(default 0.9: renaming one identifier in a 10-line function keeps the ratio
above 0.9, while two different functions of the same module score far below;
the threshold is recorded in the dataset metadata).  difflib is used rather than
a faster library because it is in the standard library and the embedded data
is small; the cheap upper bounds ``real_quick_ratio``/``quick_ratio`` prune
most pairs before the exact ratio is computed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

from harness.data.code_edit.schema import NormalizedRecord, Split

__all__ = ["DEFAULT_THRESHOLD", "LeakagePair", "LeakageReport", "check_leakage"]

DEFAULT_THRESHOLD = 0.9


@dataclass(frozen=True)
class LeakagePair:
    """Two rows in different splits that are the same edit (``kind='exact'``) or nearly."""

    kind: str  # "exact" | "near"
    a_id: str
    a_split: str
    b_id: str
    b_split: str
    similarity: float


@dataclass
class LeakageReport:
    """All leaking pairs; ``count`` is what the ``split_leakage`` gate reads."""

    threshold: float
    pairs: list[LeakagePair] = field(default_factory=list)
    compared: int = 0

    @property
    def count(self) -> int:
        return len(self.pairs)


def _text(r: NormalizedRecord) -> str:
    return " ".join(r.pre_code.split()) + "\n" + " ".join(r.post_code.split())


def check_leakage(
    records: Iterable[NormalizedRecord], *, threshold: float = DEFAULT_THRESHOLD
) -> LeakageReport:
    """Find exact and near-duplicate pairs across splits (within a split is not leakage)."""
    rows = list(records)
    report = LeakageReport(threshold=threshold)
    by_split: dict[Split, list[NormalizedRecord]] = {s: [] for s in Split}
    for r in rows:
        by_split[r.split].append(r)
    for sa, sb in combinations(Split, 2):
        texts_b = [(b, _text(b)) for b in by_split[sb]]
        for a in by_split[sa]:
            ta = _text(a)
            matcher = difflib.SequenceMatcher(None, autojunk=False)
            matcher.set_seq2(ta)
            for b, tb in texts_b:
                report.compared += 1
                if a.content_hash == b.content_hash:
                    report.pairs.append(LeakagePair("exact", a.id, sa, b.id, sb, 1.0))
                    continue
                matcher.set_seq1(tb)
                if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                    continue
                ratio = matcher.ratio()
                if ratio >= threshold:
                    report.pairs.append(LeakagePair("near", a.id, sa, b.id, sb, ratio))
    return report
