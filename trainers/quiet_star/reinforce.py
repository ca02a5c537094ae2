"""Step 2: the Quiet-STaR update (Zelikman et al. 2024, Algorithm 1) on a tiny CPU budget.

Per problem, ``k`` thoughts are sampled after the input.  For each thought ``j`` the
answer is teacher-forced after it and scored under the mixed distribution
(:mod:`trainers.quiet_star.mixing`): ``ℓⱼ = log p_mix(answer | thought j)``.  The loss is

* ``NLL = −mean_j ℓⱼ`` — trains the language model (both streams) and the mixing head;
* ``REINFORCE = −Σ_j rⱼ · log π(thought j)`` with the reward
  ``rⱼ = ℓⱼ − mean_{i≠j} ℓᵢ`` (the log-likelihood with this thought minus the mean over
  the *other* thoughts sampled at that position; a detached baseline), so a thought is
  reinforced exactly when it explains the true answer better than its siblings.

:func:`rewards` is the reward alone (unit-tested for sign and baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainers.quiet_star.mixing import MixingHead, answer_states, mix
from trainers.quiet_star.sequences import Layout, Vocab, batch, visible_mask
from trainers.quiet_star.thoughts import banned_in_thought

__all__ = ["StepStats", "quiet_star_loss", "rewards", "thought_logprob"]


def rewards(loglik: torch.Tensor) -> torch.Tensor:
    """``rⱼ = ℓⱼ − mean_{i≠j} ℓᵢ`` along the last axis (needs ≥ 2 thoughts)."""
    k = loglik.shape[-1]
    if k < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 thoughts per position")
    others = (loglik.sum(-1, keepdim=True) - loglik) / (k - 1)
    return loglik - others


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
    nll: float
    reward_abs: float
    reward_best_minus_worst: float
    mixing_weight: float
    loglik_mean: float


def quiet_star_loss(
    model: nn.Module,
    head: MixingHead,
    prompts: Sequence[list[int]],
    answers: Sequence[list[int]],
    thoughts: Sequence[Sequence[list[int]]],
    vocab: Vocab,
    *,
    policy_weight: float,
) -> tuple[torch.Tensor, StepStats]:
    """The loss for one batch of problems, ``thoughts[i]`` the k contents of problem i."""
    k = len(thoughts[0])
    hidden = visible_mask(vocab)
    base_rows = [Layout.base(p, a) for p, a in zip(prompts, answers, strict=True) for _ in range(k)]
    post_rows = [
        Layout.post(p, t, a, vocab)
        for p, a, ts in zip(prompts, answers, thoughts, strict=True)
        for t in ts
    ]
    base = answer_states(model, batch(base_rows, pad=vocab.pad), hidden)
    post = answer_states(model, batch(post_rows, pad=vocab.pad), hidden)
    w = head(base.hidden, post.hidden)
    _, tok = mix(base, post, w)
    loglik = tok.sum(-1).view(len(prompts), k)
    r = rewards(loglik.detach())
    logpi = thought_logprob(post.logits, post_rows, vocab).view(len(prompts), k)
    nll = -loglik.mean()
    policy = -(r * logpi).sum(-1).mean()
    wm = (w * base.mask).sum() / base.mask.sum()
    stats = StepStats(
        nll=float(nll.detach()),
        reward_abs=float(r.abs().mean()),
        reward_best_minus_worst=float((r.max(-1).values - r.min(-1).values).mean()),
        mixing_weight=float(wm.detach()),
        loglik_mean=float(loglik.detach().mean()),
    )
    return nll + policy_weight * policy, stats
