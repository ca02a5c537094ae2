"""Score the answer under the anti-theater conditions, on the same held-out items.

For every item the answer is teacher-forced after a thought and scored under the
mixed distribution (the trained mixing head decides ``w`` per position, as at
inference).  The thought content differs by condition; the markers and the answer do not:

* ``own`` — the model's greedy thought;
* ``random`` — as many tokens as ``own``, uniform over ordinary tokens (not pad, eos,
  ``A:`` or the 12 thought tokens), seeded;
* ``shuffled`` — another item's own thought (a seeded derangement: no item keeps its own);
* ``filler`` — as many ``.`` as ``own`` (filler alone can add computation: Pfau et al.
  2024, so thoughts must beat it, not only random tokens);
* ``none`` — an empty thought (``[thinking][/endthinking]``).

Per item and condition: the per-token answer probability ``p̄ = exp(mean log p)``
(in [0, 1], so paired differences live in [−1, 1]), exact match (greedy decoding would
reproduce the answer: every argmax is the true token), and the mean mixing weight.
``base`` (``w = 0``: the same model without a thought) is scored alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainers.quiet_star.mixing import MixingHead, answer_states, mix
from trainers.quiet_star.sequences import Layout, Vocab, batch, visible_mask

__all__ = ["CONDITIONS", "condition_thoughts", "derangement", "score_conditions"]

CONDITIONS = ("own", "random", "shuffled", "filler", "none")


def derangement(n: int, *, seed: int) -> list[int]:
    """A seeded permutation with no fixed point: item i takes item ``out[i]``'s thought."""
    if n < 2:
        raise ValueError("shuffling thoughts across items needs at least 2 items")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen).tolist()
    out = [0] * n
    for j, i in enumerate(order):
        out[i] = order[(j + 1) % n]
    return out


def condition_thoughts(
    own: Sequence[list[int]], vocab: Vocab, *, seed: int
) -> dict[str, list[list[int]]]:
    """Thought contents (without markers) per condition, from the own thoughts."""
    banned = {vocab.pad, vocab.eos, vocab.answer_sep, *vocab.thought_ids}
    ordinary = torch.tensor([i for i in range(vocab.size) if i not in banned])
    gen = torch.Generator().manual_seed(seed)
    perm = derangement(len(own), seed=seed + 1)
    rand = [ordinary[torch.randint(len(ordinary), (len(t),), generator=gen)].tolist() for t in own]
    return {
        "own": [list(t) for t in own],
        "random": rand,
        "shuffled": [list(own[j]) for j in perm],
        "filler": [[vocab.filler] * len(t) for t in own],
        "none": [[] for _ in own],
    }


@torch.no_grad()
def score_conditions(
    model: nn.Module,
    head: MixingHead,
    prompts: Sequence[list[int]],
    answers: Sequence[list[int]],
    thoughts: dict[str, list[list[int]]],
    vocab: Vocab,
    *,
    chunk: int = 64,
) -> dict[str, list[dict[str, Any]]]:
    """Per condition (and ``base``), per item: ``p_bar``, ``exact``, ``w`` (module doc)."""
    hidden = visible_mask(vocab)
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in [*thoughts, "base"]}
    for lo in range(0, len(prompts), chunk):
        ps, ans = prompts[lo : lo + chunk], answers[lo : lo + chunk]
        base_b = batch([Layout.base(p, a) for p, a in zip(ps, ans, strict=True)], pad=vocab.pad)
        base = answer_states(model, base_b, hidden)
        n_tok = base.mask.sum(-1)
        for i in range(len(ps)):
            m = base.mask[i]
            hit = bool((base.logp[i].argmax(-1)[m] == base.target[i][m]).all())
            lp = float(base.logp[i].gather(-1, base.target[i][:, None]).squeeze(-1)[m].mean())
            out["base"].append(
                {"p_bar": float(torch.exp(torch.tensor(lp))), "exact": hit, "w": 0.0}
            )
        for cond, contents in thoughts.items():
            rows = [
                Layout.post(p, c, a, vocab)
                for p, c, a in zip(ps, contents[lo : lo + chunk], ans, strict=True)
            ]
            post = answer_states(model, batch(rows, pad=vocab.pad), hidden)
            w = head(base.hidden, post.hidden)
            logp, tok = mix(base, post, w)
            mean_lp = tok.sum(-1) / n_tok
            hits = ((logp.argmax(-1) == base.target) | ~base.mask).all(-1)
            wm = (w * base.mask).sum(-1) / n_tok
            for i in range(len(ps)):
                out[cond].append(
                    {
                        "p_bar": float(torch.exp(mean_lp[i])),
                        "exact": bool(hits[i]),
                        "w": float(wm[i]),
                    }
                )
    return out
