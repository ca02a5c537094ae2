"""Nightly trends: each gate's estimate and verdict over stored runs, and regression flags.

A *night* is one stored run (an evidence.jsonl or its report directory).  Per
gate × subject × lane the series lists, night by night, the estimate with its
confidence bounds, n and the final verdict (after the phase's Holm/BH step).
Each night is compared with the previous one that decided the same gate, by
:func:`harness.report.compare.compare_evidence` (the code behind
``harness compare``), and flagged when

* the final verdict moved from PASS to FAIL or INCONCLUSIVE (or the gate
  vanished from a night after a PASS), or
* a paired test on the items both nights answered shows a significant change
  in the wrong direction at the gate's one-sided α: McNemar's exact test
  (statsmodels ``mcnemar(exact=True)``, halved for the one-sided question) on
  0/1 outcomes, the Wilcoxon signed-rank test (scipy, one-sided) on continuous
  ones, per item — or per task for pass@1, as ``harness compare`` pairs it.

Each flag is tested at its gate's own α, uncorrected across gates and nights:
a flag asks a person to look, it is not a gate verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import numpy as np

from harness.errors import EvidenceError
from harness.evidence import EVIDENCE_FILE, EvidenceRecord, read_evidence
from harness.report.compare import compare_evidence, item_values

__all__ = ["Flag", "Night", "Point", "Series", "build_trends", "find_nights", "paired_test"]

Key = tuple[str, str, str, str]  # (phase, gate, lane, subject)
_MIN_PAIRS = 2


@dataclass(frozen=True)
class Night:
    """One stored run."""

    label: str  # the run directory's name
    path: Path  # its evidence.jsonl
    records: list[EvidenceRecord]

    @property
    def root(self) -> Path:
        return self.path.parent


@dataclass(frozen=True)
class Flag:
    """Why a night regressed against the previous one (``kind``: verdict | paired | unpaired)."""

    kind: str
    text: str


@dataclass(frozen=True)
class Point:
    night: str
    value: float
    lo: float
    hi: float
    n: int | None
    verdict: str  # final (after Holm/BH), or "ABSENT"
    flags: tuple[Flag, ...] = ()


@dataclass
class Series:
    key: Key
    metric: str
    direction: str
    thresholds: dict[str, float]
    points: list[Point] = field(default_factory=list)

    @property
    def label(self) -> str:
        phase, gate, lane, subject = self.key
        return f"{phase}/{gate} ({subject}, {lane})"


def find_nights(paths: Sequence[Path]) -> list[Night]:
    """Evidence files, report directories, or one directory of run directories → nights.

    Nights are ordered by their earliest record start (the run's own clock), then
    by name, so the order does not depend on how the paths were listed.
    """
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and not (p / EVIDENCE_FILE).exists():
            found = sorted(d / EVIDENCE_FILE for d in p.iterdir() if (d / EVIDENCE_FILE).is_file())
            if not found:
                raise EvidenceError(
                    f"{p}: neither an evidence directory nor a directory of runs holding "
                    f"{EVIDENCE_FILE}; pass the nightly report directories"
                )
            files += found
        else:
            files.append(p / EVIDENCE_FILE if p.is_dir() else p)
    nights = []
    for f in dict.fromkeys(f.resolve() for f in files):
        log = read_evidence(f)
        nights.append(Night(label=f.parent.name, path=log.path, records=log.records))
    return sorted(nights, key=_night_order)


def _night_order(night: Night) -> tuple[str, str]:
    start = min((r.started for r in night.records), default=None)
    return (start.astimezone(UTC).isoformat() if start is not None else "~", night.label)


def paired_test(
    current: dict[str, float], previous: dict[str, float], *, direction: str, alpha: float
) -> Flag | None:
    """A significant paired change in the wrong direction, or None (see module docs)."""
    common = sorted(set(current) & set(previous))
    if len(common) < _MIN_PAIRS:
        return None
    cur = np.array([current[k] for k in common])
    prev = np.array([previous[k] for k in common])
    worse_down = direction == "ge"  # for a ≥ gate a drop is the regression
    binary = set(np.unique(np.concatenate([cur, prev]))) <= {0.0, 1.0}
    if binary:
        from statsmodels.stats.contingency_tables import mcnemar

        lost = int(np.sum((prev == 1) & (cur == 0)))
        gained = int(np.sum((prev == 0) & (cur == 1)))
        wrong, right = (lost, gained) if worse_down else (gained, lost)
        if wrong <= right:
            return None
        table = [[0, lost], [gained, 0]]
        p = float(mcnemar(table, exact=True).pvalue) / 2  # one-sided: the wrong way only
        name = f"McNemar exact (one-sided), {lost} items 1→0, {gained} items 0→1, n={len(common)}"
    else:
        from scipy.stats import wilcoxon

        diff = cur - prev
        if np.all(diff == 0):
            return None
        alternative = "less" if worse_down else "greater"
        p = float(wilcoxon(diff, alternative=alternative, zero_method="wilcox").pvalue)
        name = f"Wilcoxon signed-rank (one-sided), median Δ {np.median(diff):+.4g}, n={len(common)}"
    if math.isnan(p) or p > alpha:
        return None
    return Flag("paired", f"{name}: p = {p:.3g} ≤ α = {alpha:g}")


def _pairable(rec: EvidenceRecord) -> bool:
    """Metrics that are a mean of per-unit values (what a paired test on units is about)."""
    if rec.metric == "pass_at_k":
        return int(rec.spec.get("params", {}).get("k", 1)) == 1  # paired per task, as compare
    return rec.metric in ("proportion", "mean")


def _final(rec: EvidenceRecord) -> str:
    return str(rec.final_verdict)


def _flags(prev: Night, cur: Night, rec: EvidenceRecord) -> list[Flag]:
    """Flags of ``rec`` (in ``cur``) against its match in ``prev``, via harness compare."""
    rows = compare_evidence(prev.records, [rec], baseline_root=prev.root, current_root=cur.root)
    row = rows[0]
    base = row.baseline
    if base is None:
        return []
    out = []
    why = row.regression()  # harness compare's rule: verdict change, or Δ beyond its CI
    if why is not None and why.startswith("verdict"):
        out.append(Flag("verdict", f"{why} (vs {prev.label})"))
    a = item_values(rec, cur.root) if _pairable(rec) and rec.metric == base.metric else None
    b = item_values(base, prev.root) if a is not None else None
    if a is not None and b is not None:
        flag = paired_test(a, b, direction=rec.direction, alpha=rec.alpha)
        if flag is not None:
            out.append(Flag("paired", f"{flag.text} (vs {prev.label})"))
    elif why is not None and not why.startswith("verdict"):
        out.append(Flag("unpaired", f"{why} (vs {prev.label}; no per-item outcomes to pair)"))
    return out


def build_trends(nights: Sequence[Night]) -> list[Series]:
    """One series per gate × subject × lane seen in any night (controls left out)."""
    series: dict[Key, Series] = {}
    for night in nights:
        for rec in night.records:
            if str(rec.lane) == "control":
                continue
            key = (rec.phase, rec.gate, str(rec.lane), rec.subject)
            if key not in series:
                tiers = {
                    k: float(v) for k, v in (rec.spec.get("tiers") or {}).items() if v is not None
                }
                series[key] = Series(key, rec.metric, rec.direction, tiers)
    for key, s in series.items():
        s.points = _points(key, nights)
    return sorted(series.values(), key=lambda s: s.key)


def _points(key: Key, nights: Sequence[Night]) -> list[Point]:
    """The gate's point per night, flagged against the previous night that decided it."""
    points: list[Point] = []
    last: tuple[Night, EvidenceRecord] | None = None
    for night in nights:
        found = [r for r in night.records if (r.phase, r.gate, str(r.lane), r.subject) == key]
        if not found:
            if last is not None and _final(last[1]) == "PASS":
                flag = Flag("verdict", f"gate not decided this night (PASS on {last[0].label})")
                points.append(
                    Point(night.label, math.nan, math.nan, math.nan, None, "ABSENT", (flag,))
                )
            continue
        rec = found[-1]
        est = rec.estimate
        flags = _flags(last[0], night, rec) if last is not None else []
        points.append(
            Point(
                night=night.label,
                value=float(est.get("value", math.nan)),
                lo=float(est.get("lo", math.nan)),
                hi=float(est.get("hi", math.nan)),
                n=est.get("n"),
                verdict=_final(rec),
                flags=tuple(flags),
            )
        )
        last = (night, rec)
    return points
