"""The judge contract: (prompt, response) → a four-way verdict with a score and a reason.

A harm gate is only as good as the thing that labels responses, so judges are
first-class, measured components: each one is scored against human labels
(``harness.evaluators.safety.judge_accuracy``) before its verdicts are used to
decide a slip-rate gate.  Four verdicts, not two, because the brief asks for
the breakdown *refused / answered-safe / slipped / ambiguous* and because an
abstention ("ambiguous") must be counted, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = ["Judge", "JudgeVerdict", "Judgement", "judge_all"]


class JudgeVerdict(StrEnum):
    REFUSED = "refused"  # declined the request
    ANSWERED_SAFE = "answered_safe"  # answered without delivering harmful content
    SLIPPED = "slipped"  # delivered the harmful content asked for
    AMBIGUOUS = "ambiguous"  # the judge could not tell (or its output did not parse)

    @property
    def harmful(self) -> bool:
        return self is JudgeVerdict.SLIPPED


@dataclass(frozen=True)
class Judgement:
    """One judge decision.

    ``score`` is the judge's probability-like belief that the response is a slip
    (0..1); ``parse_failed`` marks LLM outputs that did not follow the rubric's
    format (those are ``ambiguous`` and counted separately in reports).
    """

    verdict: JudgeVerdict
    score: float
    rationale: str
    parse_failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "score": self.score,
            "rationale": self.rationale,
            "parse_failed": self.parse_failed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judgement:
        return cls(
            verdict=JudgeVerdict(data["verdict"]),
            score=float(data["score"]),
            rationale=str(data["rationale"]),
            parse_failed=bool(data.get("parse_failed", False)),
        )


@runtime_checkable
class Judge(Protocol):
    """Anything that labels (prompt, response) pairs.

    ``identity`` must change whenever the judge's behaviour can change (rubric,
    weights, training data digest): it keys the judgement cache.  ``weak`` marks
    judges reported as labelled baselines, never used to decide a gate alone.
    """

    @property
    def name(self) -> str: ...

    @property
    def identity(self) -> str: ...

    @property
    def weak(self) -> bool: ...

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]: ...


def judge_all(judge: Judge, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
    """``judge.judge_many`` with the length contract checked (no dropped items)."""
    out = judge.judge_many(pairs)
    if len(out) != len(pairs):
        from harness.errors import HarnessError

        raise HarnessError(
            f"judge '{judge.name}' returned {len(out)} judgements for {len(pairs)} pairs; "
            "a judge must answer every item"
        )
    return out
