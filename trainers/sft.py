"""Plain supervised fine-tuning adapter on pre-tokenised samples (completion-only loss).

Used to make the circuit-breaker phase's *vulnerable baseline*: a tiny model
fine-tuned to do tool calls, including following injections (the note's
"susceptible generator").  Samples arrive already rendered through the
tokenizer's own chat template with a completion mask, so the loss covers exactly
the tokens the format audit checked.  Full fine-tune, not LoRA: the base is a
randomly initialised tiny model.

Why not TRL's ``SFTTrainer``: measured on this 2-core machine it spent ~24 s per
step on the tiny model (gradient checkpointing on by default, per-step entropy
and accuracy metrics, accelerate wrapping) against ~2 s for this loop under the
same load; the phase must fit a 6-minute budget.  The loop is the textbook one
written on ``accelerate`` (``Accelerator.prepare`` / ``backward`` /
``clip_grad_norm_``, so it runs on a GPU when one is present and on the CPU
otherwise): AdamW, cosine schedule with warm-up, gradient clipping, masked
token CE.

Each training run is logged to W&B (offline unless the user says otherwise,
:mod:`trainers.tracking`): loss, learning rate and gradient norm per step, the
final loss as summary; the run's record (directory, id) is kept in the
artifact's metrics under ``wandb``.  The output directory is keyed with
:func:`harness.cachekey.cache_key` over this module's source, the torch /
transformers / accelerate versions, the config, the base model and examples
digest and the seed.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_dir, atomic_write_json
from harness.cachekey import (
    CacheKey,
    cache_key,
    note_cache_use,
    note_training_run,
    refresh_requested,
    run_stamp,
)
from harness.errors import TrainerError
from harness.settings import WandbMode
from trainers.base import Artifact, config_digest, directory_digest
from trainers.tracking import RunTracker

__all__ = ["SFTAdapter", "SFTConfigSpec", "SFTExample"]

ARTIFACT_FILE = "artifact.json"
#: What an SFT checkpoint depends on besides config, data and seed.
PRODUCER_MODULES = ("trainers.sft",)
PRODUCER_LIBRARIES = ("torch", "transformers", "accelerate", "tokenizers")


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
        """The cache key (hex) of this run on base model ``base_digest``."""
        return self.cache_key(base_digest).key

    def cache_key(self, base_digest: str) -> CacheKey:
        """:func:`~harness.cachekey.cache_key` over code, libraries, config, data and seed."""
        knobs = {
            k: v for k, v in asdict(self).items() if k not in ("examples", "base_model_dir", "seed")
        }
        examples = config_digest({"e": [[e.input_ids, e.completion_mask] for e in self.examples]})
        return cache_key(
            "sft",
            modules=PRODUCER_MODULES,
            libraries=PRODUCER_LIBRARIES,
            config=knobs,
            data=config_digest({"base": base_digest, "examples": examples}),
            seed=self.seed,
        )


class SFTAdapter:
    """``TrainerAdapter`` for SFT; results are cached under ``out_root`` by cache key.

    ``refresh`` retrains even when a cached run exists (so does ``--no-cache``, the
    settings' ``no_cache``, once per run); ``wandb_mode`` overrides
    the settings' W&B mode for this adapter's runs (``"disabled"`` turns logging off).
    """

    def __init__(
        self,
        *,
        out_root: Path,
        progress: Callable[[str], None] = print,
        refresh: bool = False,
        wandb_mode: WandbMode | str | None = None,
    ) -> None:
        self.out_root = Path(out_root)
        self.progress = progress
        self.refresh = refresh
        self.wandb_mode = wandb_mode

    def train(self, config: SFTConfigSpec, *, tracker: RunTracker | None = None) -> Artifact:
        """Train (or reuse) the SFT checkpoint for ``config``.

        A caller that passes its own ``tracker`` keeps the W&B run open after
        training, to add the gate metrics it computes on the model
        (``tracker.summary``) before it calls ``tracker.finish()``; otherwise
        the adapter opens and closes its own run.
        """
        if not config.examples:
            raise TrainerError(f"SFT '{config.tag}': no training examples")
        base = Path(config.base_model_dir)
        key = config.cache_key(directory_digest(base))
        digest = key.key
        out = self.out_root / f"{config.tag}-{digest[:12]}"
        marker = out / ARTIFACT_FILE
        data = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        refresh = self.refresh or refresh_requested(data.get("built_by_run"))
        note_cache_use(key, mode="refresh" if refresh else "use", label=f"sft/{config.tag}")
        if data and not refresh and data.get("config_digest") == digest:
            metrics = data.get("metrics", {})
            if metrics.get("wandb"):
                note_training_run(f"sft/{config.tag}", metrics["wandb"])
            return Artifact(out, data["digest"], digest, None, metrics, True)
        metrics = self._run(config, base, out, tracker)
        note_training_run(f"sft/{config.tag}", metrics["wandb"])
        metrics["cache"] = key.record()
        model_digest = directory_digest(out / "model")
        atomic_write_json(
            marker,
            {
                "config_digest": digest,
                "digest": model_digest,
                "metrics": metrics,
                "built_by_run": run_stamp(),
            },
        )
        return Artifact(out, model_digest, digest, None, metrics)

    def _run(
        self, cfg: SFTConfigSpec, base: Path, out: Path, given: RunTracker | None
    ) -> dict[str, Any]:
        knobs = {k: v for k, v in asdict(cfg).items() if k not in ("examples",)}
        knobs["n_examples"] = len(cfg.examples)
        tracker = given or RunTracker(name=f"sft-{cfg.tag}", config=knobs, mode=self.wandb_mode)
        try:
            metrics = self._loop(cfg, base, out, tracker)
            tracker.summary({"final_loss": metrics["final_loss"], "wall_s": metrics["wall_s"]})
        except BaseException:
            tracker.finish(failed=True)
            raise
        if given is None:
            tracker.finish()
        metrics["wandb"] = tracker.record()
        return metrics

    def _loop(
        self, cfg: SFTConfigSpec, base: Path, out: Path, tracker: RunTracker
    ) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F
        from accelerate import Accelerator  # type: ignore[import-untyped,unused-ignore]
        from transformers import (
            AutoModelForCausalLM,
            AutoTokenizer,
            get_cosine_schedule_with_warmup,
        )

        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
        tokenizer = AutoTokenizer.from_pretrained(base)
        model: Any = AutoModelForCausalLM.from_pretrained(base)
        pad = int(tokenizer.pad_token_id)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
        sched = get_cosine_schedule_with_warmup(opt, max(1, cfg.steps // 20), cfg.steps)
        model, opt, sched = accelerator.prepare(model, opt, sched)
        model.train()
        device = accelerator.device
        order: list[int] = []
        losses: list[float] = []
        t0 = time.perf_counter()
        for step in range(cfg.steps):
            if len(order) < cfg.batch_size:
                fresh = list(range(len(cfg.examples)))
                rng.shuffle(fresh)
                order.extend(fresh)
            batch = [cfg.examples[order.pop()] for _ in range(min(cfg.batch_size, len(order)))]
            width = max(len(e.input_ids) for e in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attn = torch.zeros_like(ids)
            mask = torch.zeros((len(batch), width))
            for row, e in enumerate(batch):
                n = len(e.input_ids)
                ids[row, :n] = torch.tensor(e.input_ids)
                attn[row, :n] = 1
                mask[row, :n] = torch.tensor(e.completion_mask, dtype=torch.float32)
            ids, attn, mask = ids.to(device), attn.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
            tok = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            ).reshape(ids.shape[0], -1)
            m = mask[:, 1:]
            loss: Any = (tok * m).sum() / m.sum().clamp(min=1.0)
            if not math.isfinite(float(loss.detach())):
                raise TrainerError(
                    f"SFT '{cfg.tag}': non-finite loss at step {step}; lower learning_rate"
                )
            opt.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), 1.0)
            lr = float(sched.get_last_lr()[0])
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            tracker.log(step, {"loss": losses[-1], "lr": lr, "grad_norm": float(grad_norm)})
            if step % max(1, cfg.steps // 5) == 0:
                self.progress(f"  sft '{cfg.tag}' step {step}/{cfg.steps} loss {losses[-1]:.4f}")
        model.eval()
        with atomic_dir(out) as tmp:
            accelerator.unwrap_model(model).save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        wall = round(time.perf_counter() - t0, 2)
        self.progress(f"  sft '{cfg.tag}': {cfg.steps} steps, loss {losses[-1]:.4f}, {wall}s")
        return {
            "wall_s": wall,
            "final_loss": losses[-1],
            "loss_curve": losses[:: max(1, cfg.steps // 50)],
        }
