"""Configuration of the representation-rerouting (circuit-breaker) LoRA trainer.

Every field carries help text (``metadata["help"]``) that the CLI and the docs
print.  Defaults come from sweeps on the tiny CPU model.  Put to the dev-split
rule (docs/circuit_breaker.md, "Knobs chosen on dev"): the CE weight, learning
rate and target layer (session 5), α, steps, mask mode, LoRA rank, retain
layers, batch size and LoRA alpha (session 6).  Only ``lora_alpha`` changed
(16 → 32: the one candidate meeting the rule's benign and coherence
constraints on all three dev seeds); every other default was kept because no
candidate met them.  The rest (LoRA layers, CE batch, benign CE, schedule,
warm-up, clipping) were chosen on the old eval split and never swept on dev;
LoRA dropout is fixed at 0 in the trainer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from harness.errors import TrainerError

__all__ = ["CircuitBreakerConfig", "LrSchedule", "MaskMode", "describe_config"]


class LrSchedule(StrEnum):
    CONSTANT = "constant"
    COSINE = "cosine"


class MaskMode(StrEnum):
    COMPLETION = "completion"  # reroute every token of the harmful completion
    # only the positions from the one that *predicts* the first token differing from the correct
    # completion (shared prefixes otherwise fight the retain and CE terms)
    DIVERGENT_SUFFIX = "divergent_suffix"


def _f(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Hyper-parameters of one circuit-breaker run (the cache key is their digest)."""

    alpha: float = _f(
        4.0,
        "α: scale of the loss schedule c_rr = α(1 − t/2T), c_retain = α·t/2T. Adam is "
        "scale-invariant, so α mainly trades the two representation terms against the "
        "fixed-weight cross-entropy on adversarial-safe samples. Put to the dev rule with 2 "
        "and 8 (kept: 2 had 3 incoherent outputs, 8 cost benign success on dev seed 0).",
    )
    learning_rate: float = _f(
        1e-2,
        "AdamW learning rate of the LoRA parameters. Put to the dev rule with 5e-3 and 2e-2 "
        "(kept: no value met the benign constraint on dev seed 0).",
    )
    steps: int = _f(
        100,
        "T: number of optimiser steps (each: one Ds batch, one retain batch, one "
        "adversarial-safe CE batch). Put to the dev rule with 50 and 150 (kept: neither met "
        "the benign constraint on dev seed 0; 50 missed it by one item).",
    )
    batch_size: int = _f(
        8,
        "samples per batch, for the Ds batch and for the retain batch. Put to the dev rule "
        "with 4 and 16 (kept: both cost benign success on dev seed 0).",
    )
    target_layers: tuple[int, ...] = _f(
        (2,),
        "hidden-state indices (1 = output of the first decoder layer) where Ds representations "
        "are rerouted. One layer avoids the collapse two layers caused on the tiny model. "
        "Put to the dev rule with layers 1 and 3 (kept: none met the constraints on seed 0).",
    )
    retain_layers: tuple[int, ...] | Literal["all"] | None = _f(
        "all",
        "hidden-state indices for the retain L2 loss; 'all' (default) = every decoder layer's "
        "output below the final norm, as the authors' code does; None = same as target_layers. "
        "Retain on the target layer alone leaves the upper layers free to drift: on the tiny "
        "model that cost benign success and correct behaviour (docs/circuit_breaker.md). Put "
        "to the dev rule with (2, 3) (kept: dropping layer 1 cut dev benign success to 0.34).",
    )
    mask_mode: MaskMode = _f(  # noqa: RUF009  (_f is dataclasses.field with help text)
        MaskMode.DIVERGENT_SUFFIX,
        "which Ds positions are rerouted: the whole harmful completion, or only the suffix from "
        "the position that predicts the first token where it differs from the correct "
        "completion (shared prefixes otherwise fight the retain and CE terms). Put to the dev "
        "rule with 'completion' (kept: it cost benign success on dev seed 0).",
    )
    rerouting: bool = _f(
        True,
        "False turns the rerouting term off: the adversarial-SFT-only ablation arm (same data, "
        "same LoRA, same retain + CE losses).",
    )
    adv_safe_ce_weight: float = _f(
        8.0,
        "weight of the cross-entropy on adversarial-safe Dr completions (0 disables it). "
        "Put to the dev rule against 3 on three seeds (docs/circuit_breaker.md, 'Knobs chosen "
        "on dev'): 8 has the better worst seed, neither met the benign constraint, 8 kept.",
    )
    ce_batch_size: int = _f(
        16,
        "adversarial-safe samples per step for the cross-entropy term, drawn as their own "
        "batch: in a mixed Dr batch they are only ~1 in 5, so the CE would see a handful.",
    )
    retain_on_adversarial_safe: bool = _f(
        False,
        "also apply the retain L2 to adversarial-safe samples. Off by default: the reference "
        "there is the *vulnerable* baseline, so anchoring to it pulls towards the injection.",
    )
    benign_ce_weight: float = _f(
        0.0,
        "weight of a cross-entropy on the benign retain batch's completions (0 disables it; "
        "it costs a full forward pass of that batch).",
    )
    lr_schedule: LrSchedule = _f(  # noqa: RUF009  (_f is dataclasses.field with help text)
        LrSchedule.CONSTANT, "learning-rate schedule after warm-up: constant or cosine to 0."
    )
    warmup_steps: int = _f(0, "linear learning-rate warm-up steps.")
    lora_r: int = _f(
        8, "LoRA rank. Put to the dev rule with 4 and 16 (kept: both below the benign floor)."
    )
    lora_alpha: int = _f(
        32,
        "LoRA scaling numerator (scale = lora_alpha / lora_r). Chosen on dev (session 6): 32 "
        "over 16 (the old default, from the old eval split) and 8 — the only value meeting the "
        "dev rule's benign and coherence constraints on all three seeds.",
    )
    lora_all_layers: bool = _f(
        True,
        "True (default): LoRA on every decoder layer, so the CE on adversarial-safe samples "
        "can teach the user's call in the upper layers; False: only layers up to the deepest "
        "target layer (later layers cannot change the target representation).",
    )
    max_grad_norm: float = _f(1.0, "gradient clipping norm.")
    max_length: int = _f(
        320, "keep at most this many tokens per sample, dropping the oldest (left) ones."
    )
    stop_on_nonfinite: bool = _f(
        True, "raise TrainerError at the first NaN/Inf loss (after logging the step)."
    )
    seed: int = _f(0, "seed for LoRA init and batch sampling.")

    def __post_init__(self) -> None:
        problems = []
        if self.alpha <= 0:
            problems.append(f"alpha={self.alpha} must be > 0")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate={self.learning_rate} must be > 0")
        if self.steps < 1:
            problems.append(f"steps={self.steps} must be ≥ 1")
        if self.batch_size < 1:
            problems.append(f"batch_size={self.batch_size} must be ≥ 1")
        if self.ce_batch_size < 1:
            problems.append(f"ce_batch_size={self.ce_batch_size} must be ≥ 1")
        if self.warmup_steps < 0:
            problems.append(f"warmup_steps={self.warmup_steps} must be ≥ 0")
        if self.adv_safe_ce_weight < 0 or self.benign_ce_weight < 0:
            problems.append("adv_safe_ce_weight and benign_ce_weight must be ≥ 0")
        if not self.target_layers or any(layer < 1 for layer in self.target_layers):
            problems.append(
                f"target_layers={self.target_layers} must be non-empty hidden-state indices ≥ 1"
            )
        if isinstance(self.retain_layers, str) and self.retain_layers != "all":
            problems.append(f"retain_layers={self.retain_layers!r} must be 'all', None or indices")
        elif isinstance(self.retain_layers, tuple | list) and (
            not self.retain_layers or any(layer < 1 for layer in self.retain_layers)
        ):
            problems.append(
                f"retain_layers={self.retain_layers} must be non-empty hidden-state indices ≥ 1"
            )
        if problems:
            raise TrainerError("CircuitBreakerConfig: " + "; ".join(problems))
        object.__setattr__(self, "mask_mode", MaskMode(self.mask_mode))
        object.__setattr__(self, "lr_schedule", LrSchedule(self.lr_schedule))
        object.__setattr__(self, "target_layers", tuple(self.target_layers))
        if self.retain_layers not in (None, "all"):
            object.__setattr__(self, "retain_layers", tuple(self.retain_layers))

    def retain_layers_for(self, num_layers: int) -> tuple[int, ...]:
        """The retain-loss hidden-state indices for a model with ``num_layers`` decoder layers."""
        if self.retain_layers == "all":
            return tuple(range(1, num_layers))
        return self.retain_layers if self.retain_layers is not None else self.target_layers

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mask_mode"] = str(self.mask_mode)
        out["lr_schedule"] = str(self.lr_schedule)
        return out

    def check_model(self, num_layers: int) -> None:
        """Layer indices must exist; the last hidden state is post-norm, so it is refused."""
        bad = [
            layer
            for layer in (*self.target_layers, *self.retain_layers_for(num_layers))
            if layer >= num_layers
        ]
        if bad:
            raise TrainerError(
                f"CircuitBreakerConfig: layers {bad} do not exist below the final norm of a "
                f"{num_layers}-layer model; use indices in 1..{num_layers - 1}"
            )


def describe_config() -> str:
    """Markdown table of every field, its default and help text (for docs and CLI)."""
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(CircuitBreakerConfig):
        rows.append(f"| `{f.name}` | `{f.default!r}` | {f.metadata.get('help', '')} |")
    return "\n".join(rows)
