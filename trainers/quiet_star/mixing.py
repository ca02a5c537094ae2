"""The mixing head and the answer distributions it blends (Zelikman et al. 2024 §4.2).

At every answer position the model has two next-token predictions: the **base** one
(no thought) and the **post-thought** one.  The mixing head, a small MLP on the
concatenated base and post-thought hidden states, outputs ``w ∈ [0, 1]`` and the
answer is predicted from

    log p_mix = log_softmax(w · log p_post + (1 − w) · log p_base)

(an interpolation of the two log-probability vectors, renormalised).  ``w = 0`` is the
same model without thoughts, exactly — what ``reasoning_uplift`` compares against.
Both log-probability vectors put −∞ on the 12 thought tokens first, so a thought token
can never be an answer token (thoughts stay out of the visible output).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainers.quiet_star.sequences import Batch

__all__ = ["AnswerStates", "MixingHead", "answer_states", "mix"]


class MixingHead(nn.Module):
    """MLP ``[h_base; h_post] → hidden → 1 → sigmoid`` (one weight per answer position)."""

    def __init__(self, hidden: int, *, width: int | None = None, init_bias: float = 0.0) -> None:
        super().__init__()
        width = width or hidden
        self.net = nn.Sequential(nn.Linear(2 * hidden, width), nn.ReLU(), nn.Linear(width, 1))
        with torch.no_grad():
            last = self.net[2]
            assert isinstance(last, nn.Linear)
            last.bias.fill_(init_bias)

    def forward(self, h_base: torch.Tensor, h_post: torch.Tensor) -> torch.Tensor:
        """``(..., H), (..., H) → (...)`` mixing weights in [0, 1]."""
        out: torch.Tensor = torch.sigmoid(self.net(torch.cat([h_base, h_post], dim=-1)))
        return out.squeeze(-1)


@dataclass
class AnswerStates:
    """Per row, aligned on answer positions (padded to the longest answer)."""

    logp: torch.Tensor  # (B, R, V) masked log-probabilities
    hidden: torch.Tensor  # (B, R, H) last-layer hidden state at the predicting position
    target: torch.Tensor  # (B, R) answer token ids (pad where mask is False)
    mask: torch.Tensor  # (B, R) True on real answer positions
    logits: torch.Tensor  # (B, T, V) full logits (thought-token log-probs for REINFORCE)


def answer_states(model: nn.Module, b: Batch, hidden_mask: torch.Tensor) -> AnswerStates:
    """One forward pass; gather what predicts each answer token (positions ``s-1 … e-2``)."""
    out = model(input_ids=b.ids, attention_mask=b.attention, output_hidden_states=True)
    logits, hs = out.logits, out.hidden_states[-1]
    r = max(e - s for s, e in (x.answer for x in b.layouts))
    rows = len(b.layouts)
    pos = torch.zeros((rows, r), dtype=torch.long)
    target = torch.zeros((rows, r), dtype=torch.long)
    mask = torch.zeros((rows, r), dtype=torch.bool)
    for i, x in enumerate(b.layouts):
        s, e = x.answer
        pos[i, : e - s] = torch.arange(s - 1, e - 1)
        target[i, : e - s] = b.ids[i, s:e]
        mask[i, : e - s] = True
    idx = pos.unsqueeze(-1)
    sel = logits.gather(1, idx.expand(-1, -1, logits.shape[-1]))
    sel = sel.masked_fill(hidden_mask, float("-inf"))
    h = hs.gather(1, idx.expand(-1, -1, hs.shape[-1]))
    return AnswerStates(F.log_softmax(sel, dim=-1), h, target, mask, logits)


def mix(
    base: AnswerStates, post: AnswerStates, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mixed log-probs (B, R, V), per-position log p of the true token (B, R), 0 off-mask)."""
    inf = torch.isinf(base.logp)
    blend = w.unsqueeze(-1) * post.logp.masked_fill(inf, 0.0)
    blend = blend + (1 - w).unsqueeze(-1) * base.logp.masked_fill(inf, 0.0)
    logp = F.log_softmax(blend.masked_fill(inf, float("-inf")), dim=-1)
    tok = logp.gather(-1, base.target.unsqueeze(-1)).squeeze(-1)
    return logp, tok.masked_fill(~base.mask, 0.0)
