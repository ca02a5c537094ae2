"""The stages of one forge_reasoning arm: pretrain, add tokens, bake, Quiet-STaR, evaluate.

Each function does one stage on an in-memory model and returns plain records; the
orchestration, caching and logging live in :mod:`trainers.quiet_star.pipeline`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from harness.data.arithmetic import ArithmeticItem
from trainers.quiet_star.ablation import condition_thoughts, score_conditions
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.reinforce import StepStats, problem_slots, quiet_star_loss
from trainers.quiet_star.sequences import Layout, Vocab
from trainers.quiet_star.supervised import train_supervised
from trainers.quiet_star.thoughts import sample_thoughts, sample_thoughts_batch
from trainers.quiet_star.traces import Trace, well_formed

__all__ = [
    "Log",
    "bake",
    "baking_eval",
    "evaluate_arm",
    "greedy_thoughts",
    "pretrain",
    "quiet_star",
]

Log = Callable[[str, int, dict[str, float]], None]


def pretrain(
    model: nn.Module, vocab: Vocab, items: Sequence[ArithmeticItem], cfg: QuietStarConfig, log: Log
) -> list[float]:
    """Direct-answer training of the embedded tiny model."""
    rows = [(vocab.prompt(it), vocab.answer(it.answer)) for it in items]

    def sample(gen: torch.Generator, n: int) -> list[Layout]:
        idx = torch.randint(len(rows), (n,), generator=gen).tolist()
        return [Layout.base(*rows[i]) for i in idx]

    return train_supervised(
        model, sample, steps=cfg.pretrain_steps, batch_size=cfg.batch, lr=cfg.pretrain_lr,
        pad=vocab.pad, seed=cfg.seed,
        on_step=lambda s, loss, gn: log("pretrain", s, {"loss": loss, "grad_norm": gn}),
    )  # fmt: skip


def bake(
    model: nn.Module,
    vocab: Vocab,
    traces: Sequence[Trace],
    cfg: QuietStarConfig,
    log: Log,
    *,
    steps: int,
) -> list[float]:
    """Step 1: supervised thoughts + answers, mixed with direct answers (share ``direct_share``)."""
    rows = [
        (vocab.prompt(t.item), vocab.thought(t.thought), vocab.answer(t.item.answer))
        for t in traces
    ]

    def sample(gen: torch.Generator, n: int) -> list[Layout]:
        idx = torch.randint(len(rows), (n,), generator=gen).tolist()
        direct = torch.rand(n, generator=gen) < cfg.direct_share
        out = []
        for i, d in zip(idx, direct.tolist(), strict=True):
            p, t, a = rows[i]
            out.append(Layout.base(p, a) if d else Layout.post(p, t, a, vocab))
        return out

    return train_supervised(
        model, sample, steps=steps, batch_size=cfg.batch, lr=cfg.bake_lr,
        pad=vocab.pad, seed=cfg.seed + 1,
        on_step=lambda s, loss, gn: log("bake", s, {"loss": loss, "grad_norm": gn}),
    )  # fmt: skip


def greedy_thoughts(
    model: nn.Module, vocab: Vocab, prompts: Sequence[list[int]], *, max_len: int
) -> list[list[int]]:
    """The greedy thought content (end marker stripped) for each prompt."""
    out = []
    for p in prompts:
        t = sample_thoughts(model, p, vocab, k=1, max_len=max_len, temperature=0)[0]
        out.append(t[:-1])
    return out


@torch.no_grad()
def baking_eval(
    model: nn.Module, vocab: Vocab, traces: Sequence[Trace], cfg: QuietStarConfig
) -> list[dict[str, Any]]:
    """Per held-out trace: greedy thought well-formed? answer after it exact? trace exact?"""
    prompts = [vocab.prompt(t.item) for t in traces]
    own = greedy_thoughts(model, vocab, prompts, max_len=cfg.max_thought)
    rows = []
    for t, p, th in zip(traces, prompts, own, strict=True):
        answer = vocab.answer(t.item.answer)
        x = Layout.post(p, th, answer, vocab)
        logits = model(input_ids=torch.tensor([x.ids])).logits[0]
        s, e = x.answer
        exact = bool((logits[s - 1 : e - 1].argmax(-1) == torch.tensor(x.ids[s:e])).all())
        pieces = vocab.tokens(th)
        rows.append(
            {
                "id": f"{cfg.eval_split}:{t.item.seed}"
                if t.item.seed >= 0
                else t.item.question[:60],
                "well_formed": well_formed(pieces),
                "answer_exact": exact,
                "trace_exact": th == vocab.thought(t.thought),
                "thought": " ".join(pieces),
            }
        )
    return rows


def quiet_star(
    model: nn.Module,
    head: MixingHead,
    vocab: Vocab,
    items: Sequence[ArithmeticItem],
    cfg: QuietStarConfig,
    log: Log,
    curve: Callable[[int], dict[str, float]],
) -> list[StepStats]:
    """Step 2: ``rl_steps`` Quiet-STaR updates (:mod:`trainers.quiet_star.reinforce`)."""
    rng = random.Random(cfg.seed + 2)
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    opt = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": cfg.rl_lr},
            {"params": head.parameters(), "lr": cfg.head_lr},
        ],
        weight_decay=0.0,
    )
    stats: list[StepStats] = []
    for step in range(cfg.rl_steps):
        if step % cfg.curve_every == 0:
            log("rl_eval", step, curve(step))
        chosen = rng.sample(list(items), cfg.rl_batch)
        slots = [
            slot
            for it in chosen
            for slot in problem_slots(
                vocab.prompt(it), vocab.answer(it.answer), stride=cfg.thought_stride,
                lookahead=cfg.lookahead, rng=rng,
            )
        ]  # fmt: skip
        if cfg.question_weight == 0:  # weight 0: question slots would only cost time
            slots = [s for s in slots if s.answer_time]
        model.eval()
        thoughts = sample_thoughts_batch(
            model, [s.seq[: s.pos + 1] for s in slots], vocab, k=cfg.thoughts_per_item,
            max_len=cfg.max_thought, temperature=cfg.temperature, generator=gen,
        )  # fmt: skip
        contents = [[t[:-1] for t in ts] for ts in thoughts]
        model.train()
        loss, st = quiet_star_loss(
            model, head, slots, contents, vocab, policy_weight=cfg.policy_weight,
            question_weight=cfg.question_weight,
        )  # fmt: skip
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), *head.parameters()], 1.0)
        opt.step()
        stats.append(st)
        log("rl", step, {k: float(v) for k, v in vars(st).items()})
    model.eval()
    log("rl_eval", cfg.rl_steps, curve(cfg.rl_steps))
    return stats


def evaluate_arm(
    model: nn.Module,
    head: MixingHead,
    vocab: Vocab,
    items: Sequence[ArithmeticItem],
    cfg: QuietStarConfig,
) -> dict[str, Any]:
    """Own greedy thoughts, the five conditions and the base, per held-out item."""
    prompts = [vocab.prompt(it) for it in items]
    answers = [vocab.answer(it.answer) for it in items]
    own = greedy_thoughts(model, vocab, prompts, max_len=cfg.max_thought)
    conds = condition_thoughts(own, vocab, seed=cfg.seed + 4)
    scores = score_conditions(model, head, prompts, answers, conds, vocab)
    return {
        "ids": [f"{cfg.eval_split}:{it.seed}" for it in items],
        "scores": scores,
        "thoughts": {c: [" ".join(vocab.tokens(t)) for t in ts[:5]] for c, ts in conds.items()},
        "own_lengths": [len(t) for t in own],
    }
