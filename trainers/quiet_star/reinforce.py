"""Step 2: the Quiet-STaR update (Zelikman et al. 2024, Algorithm 1) on a tiny CPU budget.

Thoughts are sampled in parallel after several tokens of the input, not only after the
question.  A **slot** is one such position: a sequence ``prompt + answer``, the index
``pos`` of the token the thought follows, and the look-ahead ``n`` — the true next
tokens teacher-forced after the thought (``n_true`` in the paper).  Each problem has
the slots of :func:`thought_positions`: a strided subset of its question positions with
a random offset per step (every position is trained in expectation) and, always, the
answer-time position after ``A:``, whose look-ahead is the whole answer (the position
inference and the gates use).

For each slot, ``k`` thoughts are sampled; for thought ``j`` the look-ahead is scored under
the mixed distribution (:mod:`trainers.quiet_star.mixing`):
``ℓⱼ = log p_mix(next n true tokens | thought j)``.  The loss is

* ``NLL = −mean ℓ`` over slots and thoughts — trains the language model (both streams)
  and the mixing head;
* ``REINFORCE = −mean_slots Σ_j rⱼ · log π(thought j)`` with the reward
  ``rⱼ = ℓⱼ − mean_{i≠j} ℓᵢ`` (the log-likelihood with this thought minus the mean over
  the *other* thoughts sampled at the same position; a detached baseline), so a thought
  is reinforced exactly when it explains the true continuation better than its siblings.

Both means over slots weight the answer-time slot 1 and each question slot
``question_weight`` (1 is the paper's uniform weighting; docs/forge_reasoning.md has
the dev-split measurement behind the default).

:func:`rewards` is the reward alone (unit-tested for sign and baseline).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainers.quiet_star.mixing import AnswerStates, MixingHead, answer_states, mix
from trainers.quiet_star.sequences import Layout, Vocab, batch, visible_mask
from trainers.quiet_star.thoughts import banned_in_thought

__all__ = [
    "Slot",
    "StepStats",
    "problem_slots",
    "quiet_star_loss",
    "rewards",
    "thought_logprob",
    "thought_positions",
]


def rewards(loglik: torch.Tensor) -> torch.Tensor:
    """``rⱼ = ℓⱼ − mean_{i≠j} ℓᵢ`` along the last axis (needs ≥ 2 thoughts)."""
    k = loglik.shape[-1]
    if k < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 thoughts per position")
    others = (loglik.sum(-1, keepdim=True) - loglik) / (k - 1)
    return loglik - others


def thought_positions(prompt_len: int, *, stride: int, offset: int) -> list[int]:
    """Indices a thought follows: ``offset, offset + stride, …`` before the last prompt token,
    then the last prompt token (``A:``, the answer-time position) — always included.

    ``stride = 1`` is the paper's every position; a larger stride samples a subset to fit a
    CPU budget, and a fresh ``offset ∈ [0, stride)`` per step covers every position.
    """
    if stride < 1 or not 0 <= offset < stride:
        raise ValueError(
            f"thought positions: stride={stride}, offset={offset}; need 0 ≤ offset < stride"
        )
    return [*range(offset, prompt_len - 1, stride), prompt_len - 1]


@dataclass(frozen=True)
class Slot:
    """One thought position: ``seq`` = prompt + answer, the thought after ``seq[pos]``,
    then the ``n`` true tokens ``seq[pos + 1 : pos + 1 + n]``."""

    seq: tuple[int, ...]
    pos: int
    n: int
    answer_time: bool


def problem_slots(
    prompt: Sequence[int],
    answer: Sequence[int],
    *,
    stride: int,
    lookahead: int,
    rng: random.Random,
) -> list[Slot]:
    """The slots of one problem (module doc): question positions with look-ahead
    ``lookahead`` (fewer where the sequence ends), the answer-time one with the whole answer."""
    seq = (*prompt, *answer)
    out = []
    for pos in thought_positions(len(prompt), stride=stride, offset=rng.randrange(stride)):
        last = pos == len(prompt) - 1
        n = len(answer) if last else min(lookahead, len(seq) - pos - 1)
        out.append(Slot(seq, pos, n, last))
    return out


def thought_logprob(logits: torch.Tensor, layouts: Sequence[Layout], vocab: Vocab) -> torch.Tensor:
    """log π(thought) per row: the sampled content tokens (end marker included)."""
    banned = banned_in_thought(vocab)
    logp = F.log_softmax(logits.masked_fill(banned, float("-inf")), dim=-1)
    out = []
    for i, x in enumerate(layouts):
        assert x.thought is not None
        s, e = x.thought  # content span; e is the end marker's index
        tgt = torch.tensor(x.ids[s : e + 1])
        out.append(logp[i, s - 1 : e].gather(-1, tgt[:, None]).sum())
    return torch.stack(out)


@dataclass(frozen=True)
class StepStats:
    """One update, for the W&B curves (``*_answer``: the answer-time slots only)."""

    nll: float
    reward_abs: float
    reward_best_minus_worst: float
    mixing_weight: float
    loglik_mean: float
    nll_answer: float
    reward_best_minus_worst_answer: float
    mixing_weight_answer: float
    slots: int


def quiet_star_loss(
    model: nn.Module,
    head: MixingHead,
    slots: Sequence[Slot],
    thoughts: Sequence[Sequence[list[int]]],
    vocab: Vocab,
    *,
    policy_weight: float,
    question_weight: float = 1.0,
) -> tuple[torch.Tensor, StepStats]:
    """The loss for one batch of slots, ``thoughts[i]`` the k contents sampled at slot i.

    Slots are averaged with weight 1 (answer-time) or ``question_weight`` (question
    positions; 1 = the paper's equal weighting), in both terms.
    """
    k = len(thoughts[0])
    hidden = visible_mask(vocab)
    base_rows = [Layout.base_at(s.seq, s.pos, s.n) for s in slots]
    post_rows = [
        Layout.post_at(s.seq, s.pos, t, s.n, vocab)
        for s, ts in zip(slots, thoughts, strict=True)
        for t in ts
    ]
    base = _repeat(answer_states(model, batch(base_rows, pad=vocab.pad), hidden), k)
    post = answer_states(model, batch(post_rows, pad=vocab.pad), hidden)
    w = head(base.hidden, post.hidden)
    _, tok = mix(base, post, w)
    loglik = tok.sum(-1).view(len(slots), k)
    r = rewards(loglik.detach())
    logpi = thought_logprob(post.logits, post_rows, vocab).view(len(slots), k)
    wt = torch.tensor([1.0 if s.answer_time else question_weight for s in slots])
    wt = wt / wt.sum()
    nll = -(loglik.mean(-1) * wt).sum()
    policy = -((r * logpi).sum(-1) * wt).sum()
    loss = nll + policy_weight * policy
    return loss, _stats(slots, loglik.detach(), r, w.detach(), base.mask)


def _repeat(states: AnswerStates, k: int) -> AnswerStates:
    """Each slot's base states once per sampled thought (one base forward per slot)."""
    return AnswerStates(
        *(t.repeat_interleave(k, dim=0) for t in (states.logp, states.hidden, states.target)),
        states.mask.repeat_interleave(k, dim=0),
        states.logits.repeat_interleave(k, dim=0),
    )


def _stats(
    slots: Sequence[Slot],
    loglik: torch.Tensor,
    r: torch.Tensor,
    w: torch.Tensor,
    mask: torch.Tensor,
) -> StepStats:
    k = loglik.shape[1]
    ans = torch.tensor([s.answer_time for s in slots])
    rows = ans.repeat_interleave(k)
    spread = r.max(-1).values - r.min(-1).values
    m_ans = mask[rows]
    return StepStats(
        nll=float(-loglik.mean()),
        reward_abs=float(r.abs().mean()),
        reward_best_minus_worst=float(spread.mean()),
        mixing_weight=float((w * mask).sum() / mask.sum()),
        loglik_mean=float(loglik.mean()),
        nll_answer=float(-loglik[ans].mean()),
        reward_best_minus_worst_answer=float(spread[ans].mean()),
        mixing_weight_answer=float((w[rows] * m_ans).sum() / m_ans.sum()),
        slots=len(slots),
    )
