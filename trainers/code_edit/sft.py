"""Stage 0 / Stage 1 code-edit SFT: TRL ``SFTTrainer`` + PEFT LoRA, cached by cache key.

TRL's pattern: a config (:class:`CodeEditSFTConfig`, pydantic, validated on
construction) paired with a trainer (:class:`CodeEditSFTTrainer`).  One
machinery serves both stages; ``target`` picks what the assistant turn is
(``post_code`` for Stage 0, ``action`` for Stage 1 — :mod:`harness.data.code_edit.prompts`).

* **Data**: only ``train``-split records (a dev/test row raises), rendered as
  TRL conversational prompt/completion rows, so the loss covers the assistant
  turn only.  Rows whose rendered length exceeds ``max_length`` are dropped
  (and counted) rather than truncated: a truncated post-code teaches the model
  to stop mid-function.  The training texts are checked for 13-gram overlap
  with HumanEval (the codegen phase's benchmark) and a hit refuses to train.
* **Model**: ``base_dir`` (a transformers checkpoint with a chat template).
  LoRA adapters (``lora_r``/``lora_alpha`` on ``target_modules``) are trained,
  then merged, so the checkpoint under ``<models_dir>/code_edit/`` is a plain
  transformers model (``model/``) plus the adapter alone (``adapter/``).
  ``lora_r = 0`` is a full fine-tune (the warm start of a random tiny model).
* **CPU settings**: bf16 off, gradient checkpointing off, no per-step token
  accuracy/entropy extras beyond TRL's defaults; measured costs in docs/code_edit.md.
* **Cache**: :func:`harness.cachekey.cache_key` over this module and the prompt
  module, library versions, the config, the digests of the base checkpoint and
  the training rows, and the seed.  A second call with the same inputs returns
  the stored artifact without training.
* **Tracking**: every run is a W&B run (offline by default, :class:`RunTracker`)
  with loss, learning rate and grad norm per logged step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.cachekey import CacheKey
from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.errors import TrainerError
from trainers.base import Artifact, config_digest, directory_digest
from trainers.code_edit.trl_common import (
    ARTIFACT_FILE,
    CachedStage,
    code_edit_models_dir,
    run_sft,
    stage_cache_key,
)

__all__ = [
    "ARTIFACT_FILE",
    "CodeEditSFTConfig",
    "CodeEditSFTTrainer",
    "check_train_only",
    "code_edit_models_dir",
]

PRODUCER_MODULES: tuple[str, ...] = (
    "trainers.code_edit.sft",
    "harness.data.code_edit.prompts",
    "trainers.code_edit.trl_common",
)
ALL_LINEAR: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)


class CodeEditSFTConfig(BaseModel):
    """What one SFT stage trains: target, LoRA shape and optimiser knobs (validated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str = Field(default="sft", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    target: Target = Target.POST_CODE
    #: LoRA rank; 0 = full fine-tune (no adapter)
    lora_r: int = Field(default=16, ge=0, le=1024)
    lora_alpha: float = Field(default=32.0, gt=0.0)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = ALL_LINEAR
    learning_rate: float = Field(default=2e-3, gt=0.0, le=1.0)
    max_steps: int = Field(default=100, ge=1, le=1_000_000)
    batch_size: int = Field(default=8, ge=1, le=4096)
    max_length: int = Field(default=512, ge=16, le=131072)
    warmup_steps: int = Field(default=5, ge=0)
    seed: int = Field(default=0, ge=0)

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not m.strip() for m in value):
            raise ValueError(
                "target_modules must name at least one module (e.g. 'q_proj', 'v_proj')"
            )
        return value

    @model_validator(mode="after")
    def _warmup_below_steps(self) -> CodeEditSFTConfig:
        if self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} must be below max_steps={self.max_steps}"
            )
        return self

    def cache_key(self, *, base_digest: str, data_digest: str) -> CacheKey:
        """Key over code, libraries, this config, base checkpoint + training rows, seed."""
        return stage_cache_key(
            "sft",
            self,
            tag=self.tag,
            seed=self.seed,
            modules=PRODUCER_MODULES,
            base_digest=base_digest,
            data_digest=data_digest,
        )


def _rows_digest(records: Sequence[NormalizedRecord]) -> str:
    """Digest of the training rows: content, instruction and the action (the Stage 1 target;
    the continued-SFT arm's actions are the teacher's, which the content hash does not cover)."""
    return config_digest(
        {
            "rows": sorted(
                r.content_hash + r.instruction + json.dumps(r.action, sort_keys=True)
                for r in records
            )
        }
    )


def check_train_only(records: Sequence[NormalizedRecord], what: str) -> None:
    """Refuse a non-train row: the held-out splits are judged, never trained on."""
    bad = [r.id for r in records if r.split is not Split.TRAIN]
    if bad:
        raise TrainerError(
            f"{what}: {len(bad)} record(s) are not in the train split ({', '.join(bad[:3])}); "
            "train only on split=train (dev chooses knobs, test is judged once)"
        )


class CodeEditSFTTrainer(CachedStage[CodeEditSFTConfig]):
    """Train (or reuse) one SFT stage for ``config`` on ``base_dir`` (XConfig/XTrainer)."""

    kind: ClassVar[str] = "sft"
    log_name: ClassVar[str] = "log_history.json"
    note_untracked: ClassVar[bool] = False

    def train(self, records: Sequence[NormalizedRecord], *, base_dir: Path) -> Artifact:
        """The merged checkpoint directory (``artifact.path / "model"``) and its metrics."""
        cfg = self.config
        check_train_only(records, f"SFT '{cfg.tag}'")
        rows = [r for r in records if cfg.target is Target.POST_CODE or r.action is not None]
        if not rows:
            raise TrainerError(f"SFT '{cfg.tag}': no training rows for target {cfg.target}")
        key = cfg.cache_key(base_digest=directory_digest(base_dir), data_digest=_rows_digest(rows))

        def build(out: Path) -> dict[str, Any]:
            return run_sft(cfg, rows, base_dir=base_dir, out=out, progress=self.progress)

        return self._reuse_or_build(key, cfg.tag, build)
