"""Evidence deltas: how each gate moved between a baseline run and the current one.

The point estimates of two runs are compared directly.  When both runs kept
their per-item outcomes (the raw files beside the evidence) and the metric is a
mean of per-item values, the difference is *paired* by item (or by task for
pass@1) and gets a paired-bootstrap confidence interval — the same prompts
answered by both models, so item difficulty cancels out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from harness.evidence import EvidenceRecord, read_evidence
from harness.report.summary import fmt_num, match_baseline, threshold_text

__all__ = [
    "DeltaRow",
    "compare_evidence",
    "compare_files",
    "item_values",
    "render_delta_markdown",
]

_PAIRED_CONFIDENCE = 0.95


@dataclass(frozen=True)
class DeltaRow:
    """One gate's movement between two runs."""

    current: EvidenceRecord
    baseline: EvidenceRecord | None
    delta: float | None
    ci: tuple[float, float] | None = None
    n_pairs: int = 0

    @property
    def metric(self) -> str:
        return self.current.metric

    @property
    def target(self) -> str:
        return threshold_text(self.current)

    @property
    def verdict_text(self) -> str:
        """'PASS → FAIL' (baseline → current, after the phase correction), or the current one."""
        cur = _final(self.current)
        return cur if self.baseline is None else f"{_final(self.baseline)} → {cur}"

    def regression(self) -> str | None:
        """Why this gate regressed, or None.

        A regression is a verdict that moved from PASS to FAIL/INCONCLUSIVE, or a
        metric that moved the wrong way beyond its uncertainty: the paired CI of Δ
        excludes 0 on the wrong side, or (without pairs) the current run's CI lies
        entirely on the wrong side of the baseline's estimate.
        """
        base = self.baseline
        if base is None:
            return None
        if _final(base) == "PASS" and _final(self.current) != "PASS":
            return f"verdict {self.verdict_text}"
        worse_up = self.current.direction != "ge"  # for a ≤ gate a larger value is worse
        if self.ci is not None:
            lo, hi = self.ci
            if (lo > 0) if worse_up else (hi < 0):
                return f"Δ {fmt_num(self.delta)} with paired CI [{fmt_num(lo)}, {fmt_num(hi)}]"
            return None
        b = _value(base)
        lo_c = float(self.current.estimate.get("lo", math.nan))
        hi_c = float(self.current.estimate.get("hi", math.nan))
        if (lo_c > b) if worse_up else (hi_c < b):
            return (
                f"current CI [{fmt_num(lo_c)}, {fmt_num(hi_c)}] excludes the baseline "
                f"estimate {fmt_num(b)} on the wrong side"
            )
        return None


def _final(rec: EvidenceRecord) -> str:
    return str(rec.final_verdict)


def _value(rec: EvidenceRecord) -> float:
    try:
        return float(rec.estimate.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _outcomes(rec: EvidenceRecord, root: Path | None) -> dict[str, float] | None:
    """Per-unit values (item, or task mean for pass@1) from the run's outcome file."""
    if root is None:
        return None
    rel = rec.extra.get("outcomes_file") or rec.raw_output
    if not rel:
        return None
    path = root / str(rel)
    if not path.is_file():
        return None
    by_item: dict[str, list[float]] = {}
    per_task = rec.metric == "pass_at_k" and int(rec.spec.get("params", {}).get("k", 1)) == 1
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "item_id" not in row or "value" not in row:
                return None
            key = str(row.get("cluster") or row["item_id"]) if per_task else str(row["item_id"])
            by_item.setdefault(key, []).append(float(row["value"]))
    except (OSError, ValueError):
        return None
    return {k: float(np.mean(v)) for k, v in by_item.items()}


def item_values(rec: EvidenceRecord, root: Path | None) -> dict[str, float] | None:
    """Per-unit values a paired comparison uses (item, or task mean for pass@1), or None
    when the run kept no readable outcome file (``harness trend`` pairs nights with it)."""
    return _outcomes(rec, root)


def _paired_ci(
    cur: dict[str, float], base: dict[str, float]
) -> tuple[tuple[float, float] | None, int]:
    common = sorted(set(cur) & set(base))
    if len(common) < 2:
        return None, len(common)
    diff = np.array([cur[k] - base[k] for k in common])
    if np.all(diff == diff[0]):
        return (float(diff[0]), float(diff[0])), len(common)
    res = stats.bootstrap(
        (diff,),
        np.mean,
        confidence_level=_PAIRED_CONFIDENCE,
        method="percentile",
        n_resamples=4999,
        rng=np.random.default_rng(0),
    )
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high)), len(common)


_PAIRABLE = {"proportion", "mean", "pass_at_k"}


def compare_evidence(
    baseline: Sequence[EvidenceRecord],
    current: Sequence[EvidenceRecord],
    *,
    baseline_root: Path | None = None,
    current_root: Path | None = None,
) -> list[DeltaRow]:
    """Match each current record to its baseline and compute Δ (and a paired CI if possible)."""
    rows: list[DeltaRow] = []
    for rec in sorted(current, key=EvidenceRecord.sort_key):
        base = match_baseline(rec, baseline)
        if base is None:
            rows.append(DeltaRow(rec, None, None))
            continue
        delta = _value(rec) - _value(base)
        ci: tuple[float, float] | None = None
        n_pairs = 0
        if rec.metric in _PAIRABLE and rec.metric == base.metric:
            cur_o = _outcomes(rec, current_root)
            base_o = _outcomes(base, baseline_root)
            if cur_o is not None and base_o is not None:
                ci, n_pairs = _paired_ci(cur_o, base_o)
                if rec.metric == "pass_at_k" and ci is not None:
                    per_task = int(rec.spec.get("params", {}).get("k", 1)) == 1
                    ci = ci if per_task else None
        rows.append(DeltaRow(rec, base, delta, ci, n_pairs))
    return rows


def compare_files(base: str | Path, cur: str | Path) -> tuple[list[DeltaRow], list[str]]:
    """Compare two evidence files (or report directories); also return read warnings."""
    b = read_evidence(base)
    c = read_evidence(cur)
    rows = compare_evidence(
        b.records, c.records, baseline_root=b.path.parent, current_root=c.path.parent
    )
    return rows, [*b.warnings, *c.warnings]


def render_delta_markdown(rows: Sequence[DeltaRow]) -> str:
    """The delta table: metric, baseline, current, Δ (paired CI when available), target."""
    header = [
        "phase",
        "gate",
        "subject",
        "lane",
        "metric",
        "baseline",
        "current",
        "Δ",
        f"Δ {_PAIRED_CONFIDENCE:.0%} CI (paired)",
        "target",
        "verdict",
    ]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        rec = row.current
        base_v = fmt_num(_value(row.baseline)) if row.baseline is not None else "— (new)"
        delta = "—" if row.delta is None else f"{'+' if row.delta > 0 else ''}{fmt_num(row.delta)}"
        ci = (
            f"[{fmt_num(row.ci[0])}, {fmt_num(row.ci[1])}] (n={row.n_pairs})"
            if row.ci is not None
            else "—"
        )
        verdict = row.verdict_text
        if row.regression():
            verdict += " (regression)"
        cells = [
            rec.phase,
            rec.gate,
            rec.subject,
            str(rec.lane),
            rec.metric,
            base_v,
            fmt_num(_value(rec)),
            delta,
            ci,
            row.target,
            verdict,
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"
