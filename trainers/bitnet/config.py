"""``BitNetConfig``: the knobs of staged BitNet b1.58 quantization-aware fine-tuning.

Every field carries help text (``metadata["help"]``); docs/compression.md lists
them.  Defaults were chosen on the embedded arithmetic task's *dev* split.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from harness.errors import TrainerError

__all__ = ["HIGH_PRECISION_DTYPES", "BitNetConfig", "qat_overrides"]

HIGH_PRECISION_DTYPES = ("bfloat16", "float16", "float32")


def _f(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class BitNetConfig:
    """Hyper-parameters of one staged QAT run (their digest is part of the cache key)."""

    stages: int = _f(
        2,
        "the linear layers, ordered least output-sensitive first, are made ternary in this "
        "many stages of about equal size; a stage that misses the dev threshold is rolled "
        "back and bisected until the layers that cost too much are single layers (fallback)",
    )
    steps_per_stage: int = _f(300, "QAT steps per round after a stage turns more layers ternary")
    stage_rounds: int = _f(
        3,
        "rounds of steps_per_stage a stage may take: it is accepted after the first round that "
        "meets the dev threshold, rolled back after the last one that does not",
    )
    final_steps: int = _f(100, "QAT steps after the last stage, on the accepted ternary layers")
    lr: float = _f(2e-3, "peak AdamW learning rate of every QAT phase (one-cycle schedule)")
    batch_size: int = _f(128, "training sequences per step")
    dev_budget: float = _f(
        0.05,
        "fallback rule: a stage whose dev metric falls below (1 − dev_budget) × the "
        "full-precision dev metric is rolled back and its layers stay in high precision",
    )
    high_precision: str = _f(
        "bfloat16", "storage dtype of non-ternary tensors (embeddings, norms, head, fallbacks)"
    )
    log_every: int = _f(10, "training-log row every this many steps")
    seed: int = _f(0, "seed of batch order and initialisation")

    def __post_init__(self) -> None:
        problems = []
        if (
            self.stages < 1
            or self.steps_per_stage < 1
            or self.stage_rounds < 1
            or self.final_steps < 0
        ):
            problems.append("stages, steps_per_stage and stage_rounds must be ≥ 1, final_steps ≥ 0")
        if not 0.0 <= self.dev_budget < 1.0:
            problems.append(f"dev_budget={self.dev_budget} must be in [0, 1)")
        if self.high_precision not in HIGH_PRECISION_DTYPES:
            problems.append(
                f"high_precision={self.high_precision!r} must be one of {HIGH_PRECISION_DTYPES}"
            )
        if self.lr <= 0 or self.batch_size < 1 or self.log_every < 1:
            problems.append("lr must be > 0, batch_size ≥ 1, log_every ≥ 1")
        if problems:
            raise TrainerError("BitNetConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def qat_overrides(raw: str) -> BitNetConfig:
    """A ``BitNetConfig`` from a JSON object of field overrides (``--compression-qat``)."""
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise TrainerError(f"--compression-qat {raw!r}: not JSON ({exc})") from exc
    names = {f.name: f for f in dataclasses.fields(BitNetConfig)}
    if not isinstance(values, dict) or any(k not in names for k in values):
        bad = sorted(set(values) - set(names)) if isinstance(values, dict) else values
        raise TrainerError(
            f"--compression-qat: unknown field(s) {bad}; BitNetConfig fields: {', '.join(names)}"
        )
    try:
        return BitNetConfig(**values)
    except TypeError as exc:
        raise TrainerError(f"--compression-qat {raw!r}: {exc}") from exc
