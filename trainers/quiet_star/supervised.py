"""Supervised steps: pretraining the tiny base model, and Step 1 "baking" of thoughts.

Both minimise cross-entropy on chosen spans of :class:`~trainers.quiet_star.sequences.Layout`
rows (the prompt is never a target):

* **pretraining** (only when there is no forge champion): base layouts, loss on the
  answer;
* **baking**: post-thought layouts of the traces, loss on the thought content, the end
  marker and the answer — mixed with base layouts of the same problems (share
  ``direct_share``) so the model still answers without a thought, which is what the
  ``w = 0`` comparison and the mixing head's base stream read.

The start marker is inserted by the system, never predicted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from trainers.quiet_star.sequences import Layout, batch

__all__ = ["supervised_loss", "train_supervised"]


def supervised_loss(model: nn.Module, layouts: Sequence[Layout], *, pad: int) -> torch.Tensor:
    """Mean CE over the answer span and (post layouts) the thought content + end marker."""
    b = batch(layouts, pad=pad)
    labels = torch.full_like(b.ids, -100)
    for i, x in enumerate(layouts):
        s, e = x.answer
        labels[i, s:e] = b.ids[i, s:e]
        if x.thought is not None:
            ts, te = x.thought
            labels[i, ts : te + 1] = b.ids[i, ts : te + 1]
    loss: torch.Tensor = model(input_ids=b.ids, attention_mask=b.attention, labels=labels).loss
    return loss


def train_supervised(
    model: nn.Module,
    sample: Callable[[torch.Generator, int], list[Layout]],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    pad: int,
    seed: int,
    on_step: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """AdamW + one-cycle for ``steps`` batches drawn by ``sample(gen, n)``; losses per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    losses: list[float] = []
    for step in range(steps):
        loss = supervised_loss(model, sample(gen, batch_size), pad=pad)
        opt.zero_grad()
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1], gn)
    model.eval()
    return losses
