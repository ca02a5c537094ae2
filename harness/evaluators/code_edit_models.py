"""Outcomes for the trained code-edit models: Stage 0 edits, Stage 1/SRL actions, SRL curves.

The subjects are models (base, Stage 0 SFT, Stage 1 SFT, SFT+SRL) evaluated on
the held-out ``test`` split through one backend (:mod:`harness.backends`), with
the prompts the trainers used (:mod:`harness.data.code_edit.prompts`), greedy.
Model output is hostile input: it is only compared as text (Stage 0) or parsed
and applied by the validator (Stage 1); it cannot reach another item's outcome.

* ``exact_match`` — 1 when the completion equals ``post_code`` (trailing
  whitespace of both ignored: a missing final newline is not a wrong edit);
* ``chrf_difference`` — per item, chrF(candidate) − chrF(baseline) against
  ``post_code``, in [−1, 1] (sacrebleu's sentence chrF: character 6-grams,
  β = 2, divided by 100).  chrF rather than a token ratio: it needs no
  tokenizer choice (the models' BPEs differ), gives partial credit for a
  near-miss edit, and of the reference-based metrics studied by Evtikhiev et
  al. (2023, "Out of the BLEU") it agreed best with programmers' judgements;
* ``action_success`` — 1 when the validator's outcome for the item is a success;
* ``curve_outcomes`` — one outcome per training step (the trend gates);
* ``pooled_runs`` — several seeded runs' outcomes in one list for the evidence of a
  worst-seed decision (the decision itself is on the per-seed estimates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from harness.backends.base import GenerationRequest, Message, SamplingParams
from harness.data.code_edit.prompts import Target, prompt_messages
from harness.data.code_edit.schema import NormalizedRecord
from harness.errors import HarnessError
from harness.outcomes import Outcome

__all__ = [
    "ActionResult",
    "action_success_outcomes",
    "chrf",
    "chrf_difference_outcomes",
    "curve_outcomes",
    "edit_requests",
    "exact_match_outcomes",
    "generate_texts",
    "pooled_runs",
]


class ActionResult(Protocol):
    """What the action validator returns per item (``code_edit_actions.ActionOutcome``)."""

    item_id: str
    parsed: bool
    success: bool
    reason: str


def edit_requests(
    records: Sequence[NormalizedRecord], target: Target, *, max_tokens: int
) -> list[GenerationRequest]:
    """One greedy chat request per record, id = record id, in the trainers' prompt shape."""
    return [
        GenerationRequest(
            request_id=r.id,
            messages=tuple(Message(**m) for m in prompt_messages(r, target)),
            sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens),
        )
        for r in records
    ]


def _completions(records: Sequence[NormalizedRecord], texts: Mapping[str, str]) -> list[str]:
    missing = [r.id for r in records if r.id not in texts]
    if missing:
        raise HarnessError(
            f"no completion for {len(missing)} record(s) ({', '.join(missing[:3])}); generate "
            "one completion per held-out record"
        )
    return [texts[r.id] for r in records]


def exact_match_outcomes(
    records: Sequence[NormalizedRecord], texts: Mapping[str, str]
) -> list[Outcome]:
    """Per record: 1 when the completion is ``post_code`` (trailing whitespace ignored)."""
    return [
        Outcome(
            item_id=r.id,
            value=float(t.rstrip() == r.post_code.rstrip()),
            cluster=r.source,
            raw={"completion": t[:2000]},
        )
        for r, t in zip(records, _completions(records, texts), strict=True)
    ]


def chrf(hypothesis: str, reference: str) -> float:
    """sacrebleu sentence chrF (chars 6-grams, β = 2) on a 0–1 scale."""
    from sacrebleu.metrics.chrf import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score) / 100.0


def chrf_difference_outcomes(
    records: Sequence[NormalizedRecord],
    candidate: Mapping[str, str],
    baseline: Mapping[str, str],
) -> list[Outcome]:
    """Per record: chrF(candidate, post) − chrF(baseline, post); raw keeps both and the
    do-nothing reference chrF(pre, post) (copying the input scores high on similarity)."""
    cand, base = _completions(records, candidate), _completions(records, baseline)
    out: list[Outcome] = []
    for r, c, b in zip(records, cand, base, strict=True):
        sc, sb = chrf(c, r.post_code), chrf(b, r.post_code)
        raw: dict[str, Any] = {
            "chrf": sc,
            "chrf_baseline": sb,
            "chrf_copy": chrf(r.pre_code, r.post_code),
        }
        out.append(Outcome(item_id=r.id, value=sc - sb, cluster=r.source, raw=raw))
    return out


def action_success_outcomes(results: Sequence[ActionResult]) -> list[Outcome]:
    """Per item: 1 when the validator applied the action and got the expected code."""
    return [
        Outcome(
            item_id=a.item_id,
            value=float(a.success),
            raw={"parsed": a.parsed, "reason": a.reason[:500]},
        )
        for a in results
    ]


def curve_outcomes(values: Sequence[float], *, name: str) -> list[Outcome]:
    """One outcome per training step, in order (``trend_slope`` reads them in order)."""
    if not values:
        raise HarnessError(f"{name}: the training curve is empty; the run logged no steps")
    return [Outcome(item_id=f"step/{i + 1:05d}", value=float(v)) for i, v in enumerate(values)]


def generate_texts(generator: Any, requests: Sequence[GenerationRequest]) -> dict[str, str]:
    """``request_id → completion text`` from any :class:`harness.backends.base.Generator`."""
    return {g.request_id: g.texts[0] for g in generator.generate(list(requests))}


def pooled_runs(per_run: Mapping[str, Sequence[Outcome]]) -> list[Outcome]:
    """Every run's outcomes in one list, item ids prefixed by the run so none collide (what
    the evidence records beside a worst-seed estimate; the estimate is per run)."""
    return [
        replace(o, item_id=f"{key}/{o.item_id}")
        for key, outcomes in per_run.items()
        for o in outcomes
    ]
