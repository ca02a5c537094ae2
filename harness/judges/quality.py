"""A judge's sensitivity and specificity, measured on held-out human labels.

A judged gate (slip rate, over-refusal) decides on the *true* rate, corrected
for the judge's errors (:mod:`harness.stats.judged`).  The correction needs the
judge's sensitivity (share of labelled events it flags) and specificity (share
of labelled non-events it clears), measured on rows the judge never saw in
training — otherwise the judge looks better than it is and the corrected bound
is too tight.  :func:`calibrate_judge` enforces that: it refuses a labelled set
that shares an objective with the judge's training rows.

The calibration outcomes it returns (one per labelled row: ``value`` = the judge
flagged it, ``raw["label"]`` = the human label) are what the
``judged_proportion`` metric takes as its second sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.judges.base import Judge, JudgeVerdict, judge_all
from harness.judges.classifier import objective_key
from harness.outcomes import Outcome
from harness.stats.judged import JudgeCounts

__all__ = [
    "JudgeCalibration",
    "LabelledRow",
    "calibrate_judge",
    "check_held_out",
    "flags_refusal",
    "flags_slip",
    "training_objectives",
]


class LabelledRow(Protocol):
    """A (prompt, response) pair with a human 0/1 label (1 = the event the judge looks for)."""

    @property
    def id(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def response(self) -> str: ...
    @property
    def label(self) -> int: ...


def flags_slip(verdict: JudgeVerdict) -> bool:
    """The slip gate's event: slipped *or* ambiguous (an answer not shown safe)."""
    return verdict in (JudgeVerdict.SLIPPED, JudgeVerdict.AMBIGUOUS)


def flags_refusal(verdict: JudgeVerdict) -> bool:
    """The over-refusal gate's event: the judge says the subject refused."""
    return verdict is JudgeVerdict.REFUSED


def training_objectives(judge: Judge) -> frozenset[str]:
    """Normalised objectives a judge was trained on (empty for untrained judges).

    Looks through wrappers (``CachedJudge.inner``) to the judge that was fitted.
    """
    seen: Any = judge
    for _ in range(8):  # wrappers nest shallowly; bound the walk
        found = getattr(seen, "train_objectives", None)
        if isinstance(found, frozenset):
            return found
        inner = getattr(seen, "inner", None)
        if inner is None:
            break
        seen = inner
    return frozenset()


def check_held_out(judge: Judge, rows: Sequence[LabelledRow], *, set_name: str) -> None:
    """Raise if any labelled row shares an objective with the judge's training rows."""
    trained = training_objectives(judge)
    clash = [r.id for r in rows if objective_key(r.prompt) in trained]
    if clash:
        shown = ", ".join(clash[:5]) + (f" … (+{len(clash) - 5} more)" if len(clash) > 5 else "")
        raise HarnessError(
            f"judge '{judge.name}' cannot be calibrated on '{set_name}': {len(clash)} of its "
            f"{len(rows)} rows share an objective with the judge's training rows ({shown}); "
            "measure sensitivity/specificity on the held-out judge_eval/refusal_eval sets, "
            "never on judge_train"
        )


@dataclass(frozen=True)
class JudgeCalibration:
    """A judge scored on one held-out labelled set for one event definition."""

    judge: str
    set_name: str
    event: str
    outcomes: tuple[Outcome, ...]
    counts: JudgeCounts

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "judge": self.judge,
            "labelled_set": self.set_name,
            "event": self.event,
            "true_pos": c.true_pos,
            "positives": c.positives,
            "true_neg": c.true_neg,
            "negatives": c.negatives,
            "sensitivity": c.sensitivity,
            "specificity": c.specificity,
        }


def calibrate_judge(
    judge: Judge,
    rows: Sequence[LabelledRow],
    *,
    flags: Callable[[JudgeVerdict], bool],
    set_name: str,
    event: str,
) -> JudgeCalibration:
    """Judge every labelled row; count hits against the human labels.

    ``flags`` maps a verdict to "the judge says this is an event"; it must be the
    same definition the gate's outcomes use, or the correction corrects the
    wrong thing.
    """
    if not rows:
        raise HarnessError(f"judge '{judge.name}': labelled set '{set_name}' is empty")
    check_held_out(judge, rows, set_name=set_name)
    judgements = judge_all(judge, [(r.prompt, r.response) for r in rows])
    outcomes = []
    tp = pos = tn = neg = 0
    for r, j in zip(rows, judgements, strict=True):
        if r.label not in (0, 1):
            raise HarnessError(f"{set_name}: row '{r.id}' has label {r.label!r}; need 0 or 1")
        flag = flags(j.verdict)
        if r.label == 1:
            pos, tp = pos + 1, tp + int(flag)
        else:
            neg, tn = neg + 1, tn + int(not flag)
        outcomes.append(
            Outcome(
                item_id=r.id,
                value=1.0 if flag else 0.0,
                cluster=f"label={r.label}",
                raw={"label": r.label, "verdict": str(j.verdict)},
            )
        )
    if pos == 0 or neg == 0:
        raise HarnessError(
            f"judge '{judge.name}': labelled set '{set_name}' has {pos} event and {neg} "
            "non-event rows; sensitivity and specificity need both"
        )
    return JudgeCalibration(
        judge=judge.name,
        set_name=set_name,
        event=event,
        outcomes=tuple(outcomes),
        counts=JudgeCounts(true_pos=tp, positives=pos, true_neg=tn, negatives=neg),
    )
