"""SRL stage: TRL ``GRPOTrainer`` from the Stage 1 checkpoint with ``reward_srl`` as reward.

Brief note 003 §5: the student writes an ast-grep action for a teacher state
(instruction + pre-code), the reward is the action similarity to the teacher's
step, ``R = clip(0.7·S_field + 0.3·S_str, −0.2, 1)`` (−0.2 when the action does
not parse; :mod:`trainers.code_edit.reward_srl`), and GRPO moves the policy
towards higher-reward actions.  The teacher here is the program teacher (the
codemod generator: a train-split record's ground-truth action); a user's
verified teacher trajectories feed the same trainer as ``(record, action)`` steps.

TRL's pattern again: :class:`SRLConfig` (pydantic, validated) + :class:`SRLTrainer`.
CPU settings: ``bf16=False``, no gradient checkpointing, ``beta = 0`` (no
reference model: the KL term is off, as TRL's default), and ``num_generations``
must divide the generation batch (``batch_size``; checked on construction).
A second reward function, exact agreement with the teacher (``S_field = 1``),
is passed with weight 0: it changes nothing in the update and TRL logs it per
step as ``rewards/action_exact/mean`` — the accuracy curve.

The checkpoint (LoRA merged into the Stage 1 weights) is a plain transformers
model under ``<models_dir>/code_edit/<tag>-<key>/model``; ``curves.json`` holds
per-step mean reward and accuracy, the series the ``reward_trend`` gate reads.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.atomic import atomic_dir, atomic_write_json
from harness.backends.hf import quiet_progress
from harness.cachekey import (
    CacheKey,
    cache_key,
    note_cache_use,
    note_training_run,
    refresh_requested,
    run_stamp,
)
from harness.data.code_edit.action import ActionError, parse_action
from harness.data.code_edit.prompts import Target, completion_text, prompt_messages, target_text
from harness.data.code_edit.schema import NormalizedRecord
from harness.errors import TrainerError
from trainers.base import Artifact, config_digest, directory_digest
from trainers.code_edit.reward_srl import field_score, reward_srl
from trainers.code_edit.sft import (
    ALL_LINEAR,
    ARTIFACT_FILE,
    PRODUCER_LIBRARIES,
    check_train_only,
    code_edit_models_dir,
)
from trainers.tracking import RunTracker

__all__ = ["SRLConfig", "SRLTrainer", "action_exact", "srl_reward"]

PRODUCER_MODULES: tuple[str, ...] = (
    "trainers.code_edit.srl",
    "trainers.code_edit.reward_srl",
    "harness.data.code_edit.prompts",
    "trainers.code_edit.trl_common",
    "harness.data.code_edit.action",
)


class SRLConfig(BaseModel):
    """GRPO knobs for the SRL run (validated: the generation batch splits into groups)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str = Field(default="srl", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    max_steps: int = Field(default=30, ge=3, le=1_000_000)
    #: completions per optimiser step (the generation batch); a multiple of num_generations
    batch_size: int = Field(default=8, ge=2, le=4096)
    num_generations: int = Field(default=4, ge=2, le=256)
    max_completion_length: int = Field(default=96, ge=8, le=32768)
    max_prompt_tokens: int = Field(default=448, ge=16, le=131072)
    #: sampling temperature of the rollouts: 0.3 on the embedded Stage 1 model, where at 0.6
    #: and 1.0 every sampled action was invalid (all rewards −0.2, zero GRPO advantage)
    temperature: float = Field(default=0.3, gt=0.0, le=5.0)
    #: 5e-3 collapsed the embedded run to invalid actions within 5 steps (reward 0.31 → −0.2)
    learning_rate: float = Field(default=5e-4, gt=0.0, le=1.0)
    lora_r: int = Field(default=16, ge=1, le=1024)
    lora_alpha: float = Field(default=32.0, gt=0.0)
    target_modules: tuple[str, ...] = ALL_LINEAR
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _groups_divide_batch(self) -> SRLConfig:
        if self.batch_size % self.num_generations:
            fit = self.num_generations * max(1, self.batch_size // self.num_generations)
            raise ValueError(
                f"num_generations={self.num_generations} must divide batch_size="
                f"{self.batch_size} (GRPO compares completions within a prompt's group); "
                f"e.g. batch_size={fit}"
            )
        return self

    def cache_key(self, *, base_digest: str, data_digest: str) -> CacheKey:
        return cache_key(
            f"code-edit-srl/{self.tag}",
            modules=PRODUCER_MODULES,
            libraries=PRODUCER_LIBRARIES,
            config=self.model_dump(mode="json"),
            data=config_digest({"base": base_digest, "rows": data_digest}),
            seed=self.seed,
        )


def srl_reward(completions: Sequence[Any], teacher_action: Sequence[str], **_: Any) -> list[float]:
    """TRL reward function: ``reward_srl`` of each completion against its teacher step."""
    return [
        reward_srl(t, completion_text(c)) for c, t in zip(completions, teacher_action, strict=True)
    ]


def action_exact(
    completions: Sequence[Any], teacher_action: Sequence[str], **_: Any
) -> list[float]:
    """1 when the completion parses and every compared field equals the teacher's (accuracy)."""
    out: list[float] = []
    for c, t in zip(completions, teacher_action, strict=True):
        try:
            pred = parse_action(completion_text(c))
        except ActionError:
            out.append(0.0)
            continue
        out.append(1.0 if field_score(parse_action(t), pred) == 1.0 else 0.0)
    return out


class SRLTrainer:
    """Train (or reuse) the SRL checkpoint from ``base_dir`` (the Stage 1 model)."""

    def __init__(
        self,
        config: SRLConfig,
        *,
        models_dir: Path | None = None,
        progress: Callable[[str], None] = print,
        refresh: bool = False,
    ) -> None:
        self.config = config
        self.models_dir = Path(models_dir) if models_dir is not None else code_edit_models_dir()
        self.progress = progress
        self.refresh = refresh

    def train(self, records: Sequence[NormalizedRecord], *, base_dir: Path) -> Artifact:
        cfg = self.config
        check_train_only(records, f"SRL '{cfg.tag}'")
        steps = [r for r in records if r.action is not None]
        if not steps:
            raise TrainerError(f"SRL '{cfg.tag}': no teacher steps (records with an action)")
        rows_digest = config_digest({"rows": sorted(r.content_hash + str(r.action) for r in steps)})
        key = cfg.cache_key(base_digest=directory_digest(base_dir), data_digest=rows_digest)
        note_cache_use(key, mode="refresh" if self.refresh else "use", label=f"srl/{cfg.tag}")
        out = self.models_dir / f"{cfg.tag}-{key.key[:12]}"
        with FileLock(str(out) + ".lock"):
            marker = out / ARTIFACT_FILE
            if marker.is_file() and not self.refresh:
                data = json.loads(marker.read_text(encoding="utf-8"))
                fresh = not refresh_requested(data.get("metrics", {}).get("built_by_run"))
                if data.get("key") == key.key and fresh:
                    metrics = data.get("metrics", {})
                    note_training_run(f"srl/{cfg.tag}", metrics.get("wandb", {}))
                    return Artifact(
                        out, data["digest"], key.key, out / "curves.json", metrics, True
                    )
            with atomic_dir(out) as tmp:
                metrics = _run_grpo(cfg, steps, base_dir=base_dir, out=tmp, progress=self.progress)
                metrics["cache"] = key.record()
                metrics["built_by_run"] = run_stamp()
                digest = directory_digest(tmp / "model")
                atomic_write_json(
                    tmp / ARTIFACT_FILE, {"key": key.key, "digest": digest, "metrics": metrics}
                )
        note_training_run(f"srl/{cfg.tag}", metrics.get("wandb", {}))
        return Artifact(out, digest, key.key, out / "curves.json", metrics)


def _prompt_rows(
    records: Sequence[NormalizedRecord], tokenizer: Any, max_prompt_tokens: int
) -> tuple[list[dict[str, Any]], list[str]]:
    from trainers.code_edit.trl_common import ChatRenderer

    renderer = ChatRenderer(tokenizer)
    keep: list[dict[str, Any]] = []
    dropped: list[str] = []
    for r in records:
        prompt = prompt_messages(r, Target.ACTION)
        text = renderer.render(prompt, generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_prompt_tokens:
            keep.append({"prompt": prompt, "teacher_action": target_text(r, Target.ACTION)})
        else:
            dropped.append(r.id)
    return keep, dropped


def _curves(history: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    rows = [h for h in history if "reward" in h]
    return {
        "step": [float(h.get("step", i + 1)) for i, h in enumerate(rows)],
        "reward": [float(h["reward"]) for h in rows],
        "accuracy": [float(h.get("rewards/action_exact/mean", 0.0)) for h in rows],
    }


def _run_grpo(
    cfg: SRLConfig,
    records: Sequence[NormalizedRecord],
    *,
    base_dir: Path,
    out: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import GRPOConfig, GRPOTrainer  # type: ignore[attr-defined]

    from trainers.code_edit.trl_common import lora_config, quiet_training, tracker_callback

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.padding_side = "left"
    rows, too_long = _prompt_rows(records, tokenizer, cfg.max_prompt_tokens)
    if not rows:
        raise TrainerError(f"SRL '{cfg.tag}': every prompt exceeds {cfg.max_prompt_tokens} tokens")
    torch.manual_seed(cfg.seed)
    with quiet_progress():
        model: Any = AutoModelForCausalLM.from_pretrained(base_dir)
    knobs = {**cfg.model_dump(mode="json"), "prompts": len(rows), "dropped_too_long": len(too_long)}
    tracker = RunTracker(name=f"code-edit-{cfg.tag}", config=knobs, group="code_edit")
    progress(f"code-edit SRL '{cfg.tag}': GRPO on {len(rows)} teacher steps, {cfg.max_steps} steps")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with quiet_training(), tempfile.TemporaryDirectory(prefix="grpo-run-") as run_dir:
            args = GRPOConfig(
                output_dir=run_dir,
                max_steps=cfg.max_steps,
                per_device_train_batch_size=cfg.batch_size,
                num_generations=cfg.num_generations,
                max_completion_length=cfg.max_completion_length,
                temperature=cfg.temperature,
                learning_rate=cfg.learning_rate,
                lr_scheduler_type="constant",
                beta=0.0,
                reward_weights=[1.0, 0.0],
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                use_cpu=not torch.cuda.is_available(),
                seed=cfg.seed,
                data_seed=cfg.seed,
                disable_tqdm=True,
                dataloader_num_workers=0,
                bf16=False,
                fp16=False,
                gradient_checkpointing=False,
                remove_unused_columns=False,
            )
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=[srl_reward, action_exact],
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=tokenizer,
                peft_config=lora_config(cfg.lora_r, cfg.lora_alpha, 0.0, cfg.target_modules),
                callbacks=[tracker_callback(tracker, progress, f"srl/{cfg.tag}")],
            )
            trainer.remove_callback(PrinterCallback)
            trainer.train()
            history = list(trainer.state.log_history)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        curves = _curves(history)
        tracker.summary({"final_reward": curves["reward"][-1] if curves["reward"] else 0.0})
    except BaseException:
        tracker.finish(failed=True)
        raise
    tracker.finish()
    with quiet_progress():
        merged = trainer.model.merge_and_unload()
        merged.eval()
        merged.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    atomic_write_json(out / "curves.json", curves)
    atomic_write_json(out / "log_history.json", history)
    return {
        "tag": cfg.tag,
        "prompts": len(rows),
        "dropped_too_long": too_long,
        "curves": curves,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "wandb": tracker.record(),
    }
