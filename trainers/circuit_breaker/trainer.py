"""Representation-rerouting ("circuit breaker") LoRA trainer.

Losses, following the circuit-breakers reference code (Zou et al. 2024):

* **rerouting** on Ds (harmful) tokens at the target layer(s):
  ``ReLU(cos(h_adapter, h_ref))`` — push the adapted representation of harmful
  continuations to be orthogonal to (or opposite) what the frozen model had;
* **retain** on Dr tokens: ``‖h_adapter − h_ref‖₂`` — keep everything else put;
* optionally **cross-entropy** on adversarial-safe Dr completions (injection
  present, the correct call is the target) — the cure for over-refusal.

``h_ref`` is the *same* model with the LoRA adapter disabled
(``PeftModel.disable_adapter()``), so no second copy of the weights is held.

Schedule: ``c_rr = α(1 − t/2T)`` and ``c_retain = α·t/2T``, as in the authors'
reference implementation: rerouting dominates early, retain grows later.  The
paper's printed Algorithm 1 swaps the two; we follow the code, which is what
produced the paper's results.

The loop is a plain PyTorch loop rather than ``transformers.Trainer``: each
step needs two forward passes of one batch (adapter on / off) and two batches
(Ds, Dr), which a Trainer subclass would only hide.  Every step is logged as one
JSONL line (``rr/cos_sim_mean``, ``retain/l2``, each loss, coefficients,
finiteness) — the Gate 2 evidence — and mirrored to W&B in offline mode when
``wandb`` is installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import TrainerError
from trainers.base import Artifact, config_digest, directory_digest, write_json_atomic

from .config import CircuitBreakerConfig, MaskMode
from .data import Label, Message, RetainKind, Sample
from .format_audit import encode_completion

__all__ = [
    "CircuitBreakerTrainer",
    "TrainItem",
    "count_nonfinite",
    "encode_dr",
    "encode_ds",
    "load_adapter",
    "read_log",
    "samples_digest",
    "schedule",
]

ARTIFACT_FILE = "artifact.json"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class TrainItem:
    """One encoded sample: ids plus the token masks each loss uses."""

    sample_id: str
    input_ids: list[int]
    loss_mask: list[int]  # Ds: tokens rerouted; Dr: cross-entropy targets (may be all 0)


def schedule(step: int, total: int, alpha: float) -> tuple[float, float]:
    """``(c_rr, c_retain)`` at 0-based ``step`` of ``total``: rerouting first, retain later."""
    progress = step / (2.0 * total)
    return alpha * (1.0 - progress), alpha * progress


def samples_digest(samples: Sequence[Sample]) -> str:
    return config_digest({"samples": [s.model_dump_json() for s in samples]})


def encode_ds(
    tokenizer: Any, samples: Sequence[Sample], *, mask_mode: MaskMode, max_length: int
) -> list[TrainItem]:
    """Encode harmful samples with their rerouting mask.

    ``divergent_suffix`` renders the correct completion for the same prompt and
    masks only the harmful tokens from the first position where the two token
    sequences differ: the shared prefix (``<|python_tag|>{"name": "send_``) is
    also what a safe answer starts with, so rerouting it would fight the retain
    and cross-entropy terms.
    """
    items = []
    for s in samples:
        if s.label is not Label.HARMFUL or s.attack is None:
            raise TrainerError(f"Ds sample '{s.id}' is not a harmful attack sample")
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        start = enc.prompt_len
        if mask_mode is MaskMode.DIVERGENT_SUFFIX:
            safe = encode_completion(
                tokenizer,
                s.prompt_messages,
                Message(role="assistant", tool_calls=[s.attack.correct_call]),
                sample_id=s.id,
            )
            a, b = enc.completion_ids, safe.completion_ids
            d = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
            if d is None:
                raise TrainerError(
                    f"Ds sample '{s.id}': harmful and correct completions do not diverge"
                )
            start = enc.prompt_len + d
        mask = [0] * start + [1] * (len(enc.input_ids) - start)
        items.append(TrainItem(s.id, enc.input_ids[:max_length], mask[:max_length]))
    return items


def encode_dr(
    tokenizer: Any, samples: Sequence[Sample], *, max_length: int, ce_on_adversarial_safe: bool
) -> list[TrainItem]:
    """Encode retain samples; the loss mask marks CE targets (adversarial-safe completions)."""
    items = []
    for s in samples:
        if s.label is not Label.RETAIN:
            raise TrainerError(f"Dr sample '{s.id}' has label '{s.label}', expected 'retain'")
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        ce = ce_on_adversarial_safe and s.subtype is RetainKind.ADVERSARIAL_SAFE
        mask = enc.completion_mask if ce else [0] * len(enc.input_ids)
        items.append(TrainItem(s.id, enc.input_ids[:max_length], list(mask[:max_length])))
    return items


def read_log(path: Path) -> list[dict[str, Any]]:
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def count_nonfinite(rows: Sequence[dict[str, Any]]) -> int:
    """Number of logged loss values that are NaN or ±Inf (Gate 2: must be 0)."""
    n = 0
    for row in rows:
        for key, value in row.items():
            if key.startswith("loss/") and (value is None or not math.isfinite(float(value))):
                n += 1
    return n


def _collate(items: Sequence[TrainItem], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(i.input_ids) for i in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(items), width), dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.float32)
    for row, item in enumerate(items):
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        attn[row, :n] = 1
        mask[row, :n] = torch.tensor(item.loss_mask, dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": attn, "mask": mask}


class _StopForward(Exception):
    """Raised by a forward hook once the deepest needed layer ran (skips the rest)."""


def _capture(
    model: Any, decoder_layers: Any, batch: dict[str, Any], layers: Sequence[int], *, logits: bool
) -> tuple[dict[int, Any], Any]:
    """Run ``model`` and collect hidden-state index ``l`` = output of decoder layer ``l-1``.

    Without ``logits`` the forward stops right after the deepest requested layer:
    rerouting and retain losses only read the target layer, so the upper layers
    and the LM head (over half the FLOPs of a tiny model) are skipped.  The index
    convention is that of ``output_hidden_states`` (0 = embeddings), which the
    tests check against transformers' own hidden states.
    """
    store: dict[int, Any] = {}
    deepest = max(layers)
    handles = []
    for layer in sorted(set(layers)):

        def hook(_mod: Any, _inp: Any, out: Any, layer: int = layer) -> None:
            store[layer] = out[0] if isinstance(out, tuple) else out
            if layer == deepest and not logits:
                raise _StopForward

        handles.append(decoder_layers[layer - 1].register_forward_hook(hook))
    result = None
    try:
        result = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    return store, (result.logits if (logits and result is not None) else None)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


class CircuitBreakerTrainer:
    """Train a circuit-breaker LoRA adapter on a base model; cache the result by digest.

    ``base_model_dir`` holds a causal LM and its tokenizer (e.g. the vulnerable
    SFT baseline).  ``ds`` are harmful samples (already filtered to true
    failures of that baseline), ``dr`` retain samples.
    """

    def __init__(
        self,
        *,
        base_model_dir: Path,
        ds: Sequence[Sample],
        dr: Sequence[Sample],
        out_root: Path,
        progress: Callable[[str], None] = print,
        use_wandb: bool | None = None,
    ) -> None:
        self.base_model_dir = Path(base_model_dir)
        self.ds = list(ds)
        self.dr = list(dr)
        self.out_root = Path(out_root)
        self.progress = progress
        self.use_wandb = (
            importlib.util.find_spec("wandb") is not None if use_wandb is None else use_wandb
        )

    def digest(self, config: CircuitBreakerConfig) -> str:
        return config_digest(
            {
                "kind": "circuit_breaker",
                "version": 1,
                "config": config.to_dict(),
                "base": directory_digest(self.base_model_dir),
                "ds": samples_digest(self.ds),
                "dr": samples_digest(self.dr),
            }
        )

    def train(self, config: CircuitBreakerConfig) -> Artifact:
        digest = self.digest(config)
        out = self.out_root / f"cb-{digest[:12]}"
        marker = out / ARTIFACT_FILE
        if marker.is_file():
            data = json.loads(marker.read_text(encoding="utf-8"))
            if data.get("config_digest") == digest:
                return Artifact(
                    path=out,
                    digest=data["digest"],
                    config_digest=digest,
                    log_path=out / LOG_FILE,
                    metrics=data.get("metrics", {}),
                    cached=True,
                )
        if not self.ds and config.rerouting:
            raise TrainerError("CircuitBreakerTrainer: Ds is empty; nothing to reroute")
        if not self.dr:
            raise TrainerError("CircuitBreakerTrainer: Dr is empty; retain data is required")
        out.mkdir(parents=True, exist_ok=True)
        metrics = self._run(config, out)
        adapter_digest = directory_digest(out / "adapter")
        write_json_atomic(
            marker,
            {
                "config_digest": digest,
                "digest": adapter_digest,
                "config": config.to_dict(),
                "base_model_dir": str(self.base_model_dir),
                "metrics": metrics,
            },
        )
        return Artifact(
            path=out,
            digest=adapter_digest,
            config_digest=digest,
            log_path=out / LOG_FILE,
            metrics=metrics,
        )

    # ------------------------------------------------------------------ the loop

    def _run(self, cfg: CircuitBreakerConfig, out: Path) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        tokenizer = AutoTokenizer.from_pretrained(self.base_model_dir)
        base = AutoModelForCausalLM.from_pretrained(self.base_model_dir)
        n_layers = int(base.config.num_hidden_layers)
        cfg.check_model(n_layers)
        deepest = max((*cfg.target_layers, *cfg.effective_retain_layers))
        layers = None if cfg.lora_all_layers else list(range(deepest))
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=0.0,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
            layers_to_transform=layers,
            bias="none",
            task_type="CAUSAL_LM",
        )
        model: Any = get_peft_model(base, lora)
        model.train()
        pad_id = int(tokenizer.pad_token_id)
        ds_items = (
            encode_ds(tokenizer, self.ds, mask_mode=cfg.mask_mode, max_length=cfg.max_length)
            if cfg.rerouting
            else []
        )
        dr_items = encode_dr(
            tokenizer,
            self.dr,
            max_length=cfg.max_length,
            ce_on_adversarial_safe=cfg.adv_safe_ce_weight > 0,
        )
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
        wandb_run = self._wandb(cfg, out)
        log_path = out / LOG_FILE
        t0 = time.perf_counter()
        nonfinite_steps: list[int] = []

        decoder_layers = model.get_base_model().model.layers

        def hidden(
            batch: dict[str, Any], layers: Sequence[int], *, adapter: bool, logits: bool = False
        ) -> tuple[dict[int, Any], Any]:
            """Hidden states at ``layers`` (and logits when asked) with the adapter on or off."""
            if adapter:
                return _capture(model, decoder_layers, batch, layers, logits=logits)
            with torch.no_grad(), model.disable_adapter():
                return _capture(model, decoder_layers, batch, layers, logits=False)

        with log_path.open("w", encoding="utf-8") as log:
            for step in range(cfg.steps):
                c_rr, c_retain = schedule(step, cfg.steps, cfg.alpha)
                row: dict[str, Any] = {"step": step, "c_rr": c_rr, "c_retain": c_retain}
                total: Any = torch.zeros(())
                if cfg.rerouting:
                    batch = _collate(
                        rng.sample(ds_items, min(cfg.batch_size, len(ds_items))), pad_id
                    )
                    mine, _ = hidden(batch, cfg.target_layers, adapter=True)
                    ref, _ = hidden(batch, cfg.target_layers, adapter=False)
                    m = batch["mask"]
                    cos_terms, rr_terms = [], []
                    for layer in cfg.target_layers:
                        cos = F.cosine_similarity(mine[layer], ref[layer].detach(), dim=-1)
                        cos_terms.append((cos * m).sum() / m.sum())
                        rr_terms.append((torch.relu(cos) * m).sum() / m.sum())
                    rr_loss = torch.stack(rr_terms).mean()
                    total = total + c_rr * rr_loss
                    row["rr/cos_sim_mean"] = float(torch.stack(cos_terms).mean().detach())
                    row["loss/rr"] = float(rr_loss.detach())
                rbatch = _collate(rng.sample(dr_items, min(cfg.batch_size, len(dr_items))), pad_id)
                want_ce = cfg.adv_safe_ce_weight > 0 and float(rbatch["mask"].sum()) > 0
                r_layers = cfg.effective_retain_layers
                r_mine, r_logits = hidden(rbatch, r_layers, adapter=True, logits=want_ce)
                r_ref, _ = hidden(rbatch, r_layers, adapter=False)
                attn = rbatch["attention_mask"].float()
                norms = []
                for layer in cfg.effective_retain_layers:
                    diff = (r_mine[layer] - r_ref[layer].detach()).norm(dim=-1)
                    norms.append((diff * attn).sum() / attn.sum())
                retain_loss = torch.stack(norms).mean()
                total = total + c_retain * retain_loss
                row["retain/l2"] = float(retain_loss.detach())
                row["loss/retain"] = float(retain_loss.detach())
                ce_mask = rbatch["mask"][:, 1:]
                if want_ce:
                    logits = r_logits[:, :-1]
                    tok_ce = F.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]),
                        rbatch["input_ids"][:, 1:].reshape(-1),
                        reduction="none",
                    ).reshape(ce_mask.shape)
                    ce_loss = (tok_ce * ce_mask).sum() / ce_mask.sum()
                    total = total + cfg.adv_safe_ce_weight * ce_loss
                    row["loss/ce_adv_safe"] = float(ce_loss.detach())
                row["loss/total"] = float(total.detach())
                finite = all(math.isfinite(v) for k, v in row.items() if k.startswith("loss/"))
                row["finite"] = finite
                if finite:
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    row["grad_norm"] = float(
                        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    )
                    opt.step()
                else:
                    nonfinite_steps.append(step)
                row["elapsed_s"] = round(time.perf_counter() - t0, 3)
                log.write(
                    json.dumps(
                        {k: _json_float(v) if isinstance(v, float) else v for k, v in row.items()}
                    )
                    + "\n"
                )
                log.flush()
                if wandb_run is not None:
                    wandb_run.log(
                        {k: v for k, v in row.items() if isinstance(v, int | float)}, step=step
                    )
                if not finite and cfg.stop_on_nonfinite:
                    if wandb_run is not None:
                        wandb_run.finish()
                    raise TrainerError(
                        f"circuit-breaker training hit a non-finite loss at step {step} "
                        f"({ {k: v for k, v in row.items() if k.startswith('loss/')} }); "
                        f"log: {log_path}. Lower learning_rate or alpha."
                    )
                if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
                    self.progress(
                        f"  cb step {step:>4}/{cfg.steps} total {row['loss/total']:.4f} "
                        f"cos {row.get('rr/cos_sim_mean', float('nan')):.3f} "
                        f"retain {row['retain/l2']:.3f} ({row['elapsed_s']:.0f}s)"
                    )
        if wandb_run is not None:
            wandb_run.finish()
        model.eval()
        model.save_pretrained(str(out / "adapter"))
        tokenizer.save_pretrained(str(out / "adapter"))
        return {
            "wall_s": round(time.perf_counter() - t0, 2),
            "steps": cfg.steps,
            "nonfinite_steps": nonfinite_steps,
            "n_ds": len(ds_items),
            "n_dr": len(dr_items),
            "n_ce_targets": sum(1 for i in dr_items if any(i.loss_mask)),
        }

    def _wandb(self, cfg: CircuitBreakerConfig, out: Path) -> Any:
        if not self.use_wandb:
            return None
        # offline only: there is no network here, and evidence must not leave the machine
        import wandb  # type: ignore[import-not-found,unused-ignore]

        os.environ.setdefault("WANDB_MODE", "offline")
        return wandb.init(
            project="gate-harness-circuit-breaker",
            dir=str(out),
            mode="offline",
            config=cfg.to_dict(),
            reinit=True,
        )


def load_adapter(artifact: Artifact, base_model_dir: Path) -> Any:
    """Base model + the trained adapter, in eval mode (a ``PeftModel``)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    model = PeftModel.from_pretrained(base, artifact.path / "adapter")
    model.eval()
    return model
