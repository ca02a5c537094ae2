"""Phase-level multiplicity over evidence records (decision layer): the Holm/BH upgrade.

A *family* is the gates of one phase for one subject in one lane.  Each test
item already decided at the Bonferroni level α/m, which is valid on its own and
under xdist; once the whole family is known, Holm (or BH) adjusts the gates'
one-sided p-values together (statsmodels ``multipletests`` via
:func:`harness.stats.multiplicity.adjust`).  Gates of the phase that did not
run count as p = 1, so a partial run is never corrected more leniently than a
full one.  The correction can only *upgrade* an INCONCLUSIVE gate to PASS, and an
upgraded gate meets the tier its PASS needs (:func:`upgraded_tier`), decided here
so the reports only render the stored ``Adjustment.tier``.

The controller stores the result in each record at the end of the run
(:func:`adjust_records`), and every report reads it from there; evidence
written before ``adjustment`` existed (schema 1) or by an interrupted run is
adjusted on the fly by the same function, so both paths give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.decision import Verdict
from harness.errors import EvidenceError
from harness.evidence import Adjustment, EvidenceRecord, Lane
from harness.spec import Tiers

__all__ = ["adjust_records", "family_key", "upgraded_tier"]


def family_key(record: EvidenceRecord) -> tuple[str, Lane, str]:
    """(phase, lane, subject): the records corrected together."""
    return (record.phase, record.lane, record.subject)


def _tested(record: EvidenceRecord) -> bool:
    return record.p_value is not None and record.metric != "count"


def _complete(adj: Adjustment | None) -> bool:
    """A stored adjustment with every field this version decides (``tier`` came later)."""
    return adj is not None and adj.tier is not None


def upgraded_tier(record: EvidenceRecord) -> str:
    """The tier an upgraded gate meets: the one its PASS needs (fallback if declared, else primary).

    Holm/BH tested the required threshold only.  A more ambitious tier cannot be met
    where the required one was undecided (its threshold lies beyond the required one on
    the same bound), so the required tier is the highest the corrected PASS supports.
    """
    tiers = record.spec.get("tiers")
    if tiers:
        try:
            return Tiers.model_validate(tiers).required[0]
        except ValueError as exc:
            raise EvidenceError(
                f"evidence record {record.phase}/{record.gate}: field spec.tiers={tiers!r} is not "
                f"a valid tier set ({exc}); re-run the gate or repair the record"
            ) from exc
    names = [str(name) for name, _ in record.decision.get("tier_verdicts") or []]
    return names[-1] if names else "primary"  # most ambitious first: the last is the required


def adjust_records(
    records: Iterable[EvidenceRecord], *, recompute: bool = False
) -> list[EvidenceRecord]:
    """Records (same order) with ``adjustment`` set for every tested gate of a corrected family.

    A family whose tested records all carry an adjustment already keeps them
    (the stored evidence is authoritative) unless ``recompute``; any other
    family is adjusted afresh as a whole, so a family never mixes old and new
    numbers.
    """
    out = list(records)
    families: dict[tuple[str, Lane, str], list[int]] = {}
    for i, rec in enumerate(out):
        families.setdefault(family_key(rec), []).append(i)
    for members in families.values():
        method = out[members[0]].multiplicity
        tested = [i for i in members if _tested(out[i])]
        if method == "none" or not tested:
            continue
        if not recompute and all(_complete(out[i].adjustment) for i in tested):
            continue
        for i, adj in zip(tested, _adjust_family([out[i] for i in tested], method), strict=True):
            out[i] = out[i].model_copy(update={"adjustment": adj})
    return out


def _adjust_family(tested: Sequence[EvidenceRecord], method: str) -> list[Adjustment]:
    from harness.stats.multiplicity import adjust

    m = max(len(tested), max(r.family_size for r in tested))
    pvals = [float(r.p_value) for r in tested]  # type: ignore[arg-type]
    padded = [*pvals, *([1.0] * (m - len(pvals)))]
    adjusted = adjust(padded, method=method)
    # rank among all m p-values (padding p = 1 sorts after every real one; ties keep input order)
    order = sorted(range(m), key=lambda i: padded[i])
    rank = {idx: pos + 1 for pos, idx in enumerate(order)}
    result = []
    for i, rec in enumerate(tested):
        p_adj = float(adjusted[i])
        r = rank[i]
        step = rec.alpha / (m - r + 1) if method == "holm" else rec.alpha * r / m
        upgraded = (
            rec.verdict is Verdict.INCONCLUSIVE
            and rec.decision.get("rule") != "point"
            and p_adj <= rec.alpha
            and rec.expect is None
            and int(rec.estimate.get("n", 0)) >= int(rec.spec.get("min_n") or 0)
            # a verdict downgraded for its inputs (sandbox errors) stays undecided
            and not rec.decision.get("downgraded")
        )
        result.append(
            Adjustment(
                method=method,
                family_size=m,
                family_tested=len(tested),
                rank=r,
                p_adjusted=p_adj,
                alpha=rec.alpha,
                alpha_step=step,
                upgraded=upgraded,
                verdict=Verdict.PASS if upgraded else rec.verdict,
                tier=upgraded_tier(rec) if upgraded else str(rec.decision.get("tier", "none")),
            )
        )
    return result
