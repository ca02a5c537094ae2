"""Plain supervised fine-tuning adapter (TRL ``SFTTrainer``) on pre-tokenised samples.

Used to make the circuit-breaker phase's *vulnerable baseline*: a tiny model
fine-tuned to do tool calls, including following injections (the note's
"susceptible generator").  Samples arrive already rendered through the
tokenizer's own chat template with a completion mask, so TRL's
``completion_only_loss`` trains exactly the tokens the format audit checked.
Full fine-tune, not LoRA: the base is a randomly initialised tiny model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import TrainerError
from trainers.base import Artifact, config_digest, directory_digest, write_json_atomic

__all__ = ["SFTAdapter", "SFTConfigSpec", "SFTExample"]

ARTIFACT_FILE = "artifact.json"


@dataclass(frozen=True)
class SFTExample:
    input_ids: list[int]
    completion_mask: list[int]


@dataclass(frozen=True)
class SFTConfigSpec:
    """What to train: base model directory, data, and a few optimiser settings."""

    base_model_dir: str
    examples: tuple[SFTExample, ...]
    steps: int = 250
    learning_rate: float = 3e-3
    batch_size: int = 16
    seed: int = 0
    tag: str = "sft"

    def digest(self, base_digest: str) -> str:
        payload = {k: v for k, v in asdict(self).items() if k not in ("examples", "base_model_dir")}
        payload["base"] = base_digest
        payload["examples"] = config_digest(
            {"e": [[e.input_ids, e.completion_mask] for e in self.examples]}
        )
        return config_digest(payload)


class SFTAdapter:
    """``TrainerAdapter`` for SFT; results are cached under ``out_root`` by config digest."""

    def __init__(self, *, out_root: Path, progress: Callable[[str], None] = print) -> None:
        self.out_root = Path(out_root)
        self.progress = progress

    def train(self, config: SFTConfigSpec) -> Artifact:
        if not config.examples:
            raise TrainerError(f"SFT '{config.tag}': no training examples")
        base = Path(config.base_model_dir)
        digest = config.digest(directory_digest(base))
        out = self.out_root / f"{config.tag}-{digest[:12]}"
        marker = out / ARTIFACT_FILE
        if marker.is_file():
            data = json.loads(marker.read_text(encoding="utf-8"))
            if data.get("config_digest") == digest:
                return Artifact(out, data["digest"], digest, None, data.get("metrics", {}), True)
        metrics = self._run(config, base, out)
        model_digest = directory_digest(out / "model")
        write_json_atomic(
            marker, {"config_digest": digest, "digest": model_digest, "metrics": metrics}
        )
        return Artifact(out, model_digest, digest, None, metrics)

    def _run(self, cfg: SFTConfigSpec, base: Path, out: Path) -> dict[str, Any]:
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        torch.manual_seed(cfg.seed)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
        data = Dataset.from_dict(
            {
                "input_ids": [list(e.input_ids) for e in cfg.examples],
                "completion_mask": [list(e.completion_mask) for e in cfg.examples],
            }
        )
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"{cfg.tag}-run-") as run_dir:
            args = SFTConfig(
                output_dir=run_dir,
                max_steps=cfg.steps,
                per_device_train_batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                lr_scheduler_type="cosine",
                warmup_steps=max(1, cfg.steps // 20),
                logging_steps=max(1, cfg.steps // 10),
                save_strategy="no",
                report_to=[],
                use_cpu=True,
                seed=cfg.seed,
                data_seed=cfg.seed,
                completion_only_loss=True,
                packing=False,
                max_length=None,
                disable_tqdm=True,
                dataloader_num_workers=0,
            )
            trainer = SFTTrainer(
                model=model, args=args, train_dataset=data, processing_class=tokenizer
            )
            result = trainer.train()
            losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        model.eval()
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        wall = round(time.perf_counter() - t0, 2)
        self.progress(f"  sft '{cfg.tag}': {cfg.steps} steps, loss {losses[-1]:.4f}, {wall}s")
        return {"wall_s": wall, "train_loss": float(result.training_loss), "loss_curve": losses}
