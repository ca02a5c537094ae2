"""Cognate: three specialised tiny models fine-tuned from one shared, briefly trained stem.

Why a trained stem rather than only a shared random initialisation: weight-space merging
(task arithmetic, TIES, DARE, SLERP) works when the models sit in one loss basin, which
fine-tunes of a common pretrained model do and independently trained models generally do
not.  The stem is trained on the uniform mix of every difficulty level; each specialist
then continues from it on its own mix, context and learning rate
(:class:`~trainers.forge.config.SpecialistConfig`).  The stem's weights are the ``base``
of the task vectors ``δ = θ − base`` that TIES/DARE and the diversity measure use.

Every model is a ``LlamaForCausalLM``; this module returns state dicts and training logs,
and evaluation is done by the caller (:mod:`trainers.forge.pipeline`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from harness.data.arithmetic import ArithmeticItem
from trainers.forge.config import ForgeConfig, SpecialistConfig
from trainers.forge.digitlm import DigitVocab, make_llama, train_steps

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

__all__ = ["CognateModels", "item_weights", "train_cognate"]


@dataclass
class CognateModels:
    """The untrained initialisation, the stem and the specialists (name → model)."""

    init: LlamaForCausalLM
    stem: LlamaForCausalLM
    specialists: dict[str, LlamaForCausalLM]
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def item_weights(items: Sequence[ArithmeticItem], level_weights: Sequence[float]) -> list[float]:
    """Per-item sampling weight so that level ``d`` gets ``level_weights[d-1]`` of the mix.

    Items of unknown level (user data, ``difficulty`` 0) get weight 1 each: a user dataset
    has no levels, so every specialist sees it uniformly.
    """
    counts: dict[int, int] = {}
    for it in items:
        counts[it.difficulty] = counts.get(it.difficulty, 0) + 1
    out = []
    for it in items:
        d = it.difficulty
        if d == 0 or d > len(level_weights):
            out.append(1.0)
        else:
            out.append(level_weights[d - 1] / counts[d])
    return out


def _specialise(
    stem: LlamaForCausalLM,
    vocab: DigitVocab,
    train: Sequence[ArithmeticItem],
    cfg: ForgeConfig,
    spec: SpecialistConfig,
    log: Callable[[str, int, float], None],
) -> tuple[LlamaForCausalLM, list[float]]:
    model = copy.deepcopy(stem)
    losses = train_steps(
        model, vocab, train, steps=cfg.specialist_steps, batch=cfg.batch, lr=spec.lr,
        seed=spec.seed, max_len=spec.context,
        weights=item_weights(train, spec.level_weights),
        on_step=lambda s, loss: log(spec.name, s, loss),
    )  # fmt: skip
    return model, losses


def train_cognate(
    cfg: ForgeConfig,
    vocab: DigitVocab,
    train: Sequence[ArithmeticItem],
    *,
    log: Callable[[str, int, float], None] = lambda _n, _s, _l: None,
) -> CognateModels:
    """Train the stem on the uniform mix, then each specialist from a copy of it."""
    init = make_llama(
        vocab, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, seed=cfg.seed,
        context=cfg.context,
    )  # fmt: skip
    stem = copy.deepcopy(init)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    losses: dict[str, Any] = {
        "stem": train_steps(
            stem,
            vocab,
            train,
            steps=cfg.stem_steps,
            batch=cfg.batch,
            lr=cfg.stem_lr,
            seed=cfg.seed,
            max_len=cfg.context,
            on_step=lambda s, loss: log("stem", s, loss),
            weights=item_weights(train, cfg.stem_level_weights),
        )
    }
    seconds["stem"] = time.perf_counter() - t0
    specialists = {}
    for spec in cfg.specialists:
        t0 = time.perf_counter()
        specialists[spec.name], losses[spec.name] = _specialise(stem, vocab, train, cfg, spec, log)
        seconds[spec.name] = time.perf_counter() - t0
    for m in (init, stem):
        m.eval()  # type: ignore[no-untyped-call, unused-ignore]
    return CognateModels(init, stem, specialists, losses, seconds)


def state_dict_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s parameters (what merges operate on)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
