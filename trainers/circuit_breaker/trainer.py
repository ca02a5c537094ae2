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

The loop is an ``accelerate`` loop (``Accelerator.prepare`` / ``backward`` /
``clip_grad_norm_``) rather than a ``transformers.Trainer`` subclass: each step
needs three batches (Ds, benign Dr, adversarial-safe Dr) and the same model
with the adapter on and off, which a Trainer would only hide.  On a machine
with a GPU the same code runs there; here it runs on the CPU.  Every step is
logged as one JSONL line (``rr/cos_sim_mean``, ``retain/l2``, each loss,
coefficients, finiteness) — the Gate 2 evidence — and mirrored to a W&B run
(:class:`trainers.tracking.RunTracker`: offline unless the settings say
otherwise, ``disabled`` only when asked; its record is in the artifact's
metrics under ``wandb``).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cachekey import cache_key, refresh_requested, run_stamp
from harness.errors import TrainerError
from trainers.base import Artifact, config_digest, directory_digest, write_json_atomic

from .cachekey import LIBRARIES, TRAINER_MODULES
from .config import CircuitBreakerConfig, LrSchedule, MaskMode
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


def _fit(ids: list[int], mask: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Keep at most ``max_length`` tokens, dropping from the *left*.

    The completion — every token a loss looks at — is the end of the sequence;
    cutting from the right would train on a prompt with its tool call removed.
    Long external samples (AgentDojo, ASB) lose their oldest context instead.
    """
    if len(ids) <= max_length:
        return list(ids), list(mask)
    return list(ids[-max_length:]), list(mask[-max_length:])


def encode_ds(
    tokenizer: Any, samples: Sequence[Sample], *, mask_mode: MaskMode, max_length: int
) -> list[TrainItem]:
    """Encode harmful samples with their rerouting mask.

    ``divergent_suffix`` renders the correct completion for the same prompt,
    finds the first completion token ``d`` where the two token sequences differ,
    and masks the positions from ``d − 1`` on.  Position ``d − 1`` is the one
    whose hidden state *predicts* token ``d`` — the choice between the
    injected and the intended action is made there; masking only from ``d``
    (the first differing *input*) would let the model emit the injected tool
    name and then only garble its arguments.  Earlier positions of the shared
    prefix (``<|python_tag|>{"name": "send_``) are what a safe answer starts with
    too, so rerouting them would fight the retain and cross-entropy terms.
    """
    items = []
    for s in samples:
        if s.label is not Label.HARMFUL or s.attack is None:
            raise TrainerError(f"Ds sample '{s.id}' is not a harmful attack sample")
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        start = enc.prompt_len
        if mask_mode is MaskMode.DIVERGENT_SUFFIX:
            d: int | None = 0  # no correct call (a text answer): they diverge at once
            if s.attack.correct_call is not None:
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
            start = enc.prompt_len + d - 1  # (d = 0 would be the last prompt position)
        mask = [0] * start + [1] * (len(enc.input_ids) - start)
        items.append(TrainItem(s.id, *_fit(enc.input_ids, mask, max_length)))
    return items


def encode_dr(
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    max_length: int,
    ce_on_adversarial_safe: bool,
    ce_on_benign: bool = False,
) -> list[TrainItem]:
    """Encode retain samples; the loss mask marks CE targets (the completion) where asked."""
    items = []
    for s in samples:
        if s.label is not Label.RETAIN:
            raise TrainerError(f"Dr sample '{s.id}' has label '{s.label}', expected 'retain'")
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        adv = s.subtype is RetainKind.ADVERSARIAL_SAFE
        ce = ce_on_adversarial_safe if adv else ce_on_benign
        mask = enc.completion_mask if ce else [0] * len(enc.input_ids)
        items.append(TrainItem(s.id, *_fit(enc.input_ids, list(mask), max_length)))
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


def _lr_factor(step: int, cfg: CircuitBreakerConfig) -> float:
    """Multiplier of the base learning rate: linear warm-up, then constant or cosine to 0."""
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    if cfg.lr_schedule is LrSchedule.CONSTANT:
        return 1.0
    span = max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))


def _rerouting_loss(
    mine: dict[int, Any], ref: dict[int, Any], mask: Any, layers: Sequence[int]
) -> tuple[Any, Any]:
    """(mean cosine, mean ReLU(cosine)) over the masked Ds positions, averaged over layers."""
    import torch
    import torch.nn.functional as F

    cos_terms, rr_terms = [], []
    for layer in layers:
        cos = F.cosine_similarity(mine[layer], ref[layer].detach(), dim=-1)
        cos_terms.append((cos * mask).sum() / mask.sum())
        rr_terms.append((torch.relu(cos) * mask).sum() / mask.sum())
    return torch.stack(cos_terms).mean(), torch.stack(rr_terms).mean()


def _retain_loss(
    mine: dict[int, Any], ref: dict[int, Any], attention_mask: Any, layers: Sequence[int]
) -> Any:
    """Mean ``‖h_adapter − h_ref‖₂`` over every real (non-pad) token, averaged over layers."""
    import torch

    attn = attention_mask.float()
    norms = []
    for layer in layers:
        diff = (mine[layer] - ref[layer].detach()).norm(dim=-1)
        norms.append((diff * attn).sum() / attn.sum())
    return torch.stack(norms).mean()


def _masked_ce(logits: Any, batch: dict[str, Any]) -> Any:
    """Token cross-entropy of next-token predictions on the batch's masked (completion) tokens."""
    import torch.nn.functional as F

    shifted = logits[:, :-1]
    mask = batch["mask"][:, 1:]
    tok = F.cross_entropy(
        shifted.reshape(-1, shifted.shape[-1]),
        batch["input_ids"][:, 1:].reshape(-1),
        reduction="none",
    ).reshape(mask.shape)
    return (tok * mask).sum() / mask.sum().clamp(min=1.0)


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
        #: None: the settings' W&B mode (offline by default); False: disabled for this trainer
        self.use_wandb = use_wandb

    def digest(self, config: CircuitBreakerConfig) -> str:
        """:func:`harness.cachekey.cache_key` of the trainer code, libraries, config and data."""
        data = config_digest(
            {
                "base": directory_digest(self.base_model_dir),
                "ds": samples_digest(self.ds),
                "dr": samples_digest(self.dr),
            }
        )
        return cache_key(
            "circuit_breaker",
            modules=TRAINER_MODULES,
            libraries=LIBRARIES,
            config=config.to_dict(),
            data=data,
            seed=config.seed,
        ).key

    def train(self, config: CircuitBreakerConfig) -> Artifact:
        digest = self.digest(config)
        out = self.out_root / f"cb-{digest[:12]}"
        marker = out / ARTIFACT_FILE
        if marker.is_file():
            data = json.loads(marker.read_text(encoding="utf-8"))
            # --no-cache (settings.no_cache): retrain once per run
            if data.get("config_digest") == digest and not refresh_requested(
                data.get("built_by_run")
            ):
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
                "built_by_run": run_stamp(),
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
        from accelerate import Accelerator  # type: ignore[import-untyped,unused-ignore]
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(cfg.seed)
        rng = random.Random(cfg.seed)
        # a GPU when there is one (guarded: CPU otherwise); one process, no mixed precision,
        # so the CPU numbers here are what the gates were calibrated on
        accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
        tokenizer = AutoTokenizer.from_pretrained(self.base_model_dir)
        base = AutoModelForCausalLM.from_pretrained(self.base_model_dir)
        n_layers = int(base.config.num_hidden_layers)
        cfg.check_model(n_layers)
        retain_layers = cfg.retain_layers_for(n_layers)
        deepest = max((*cfg.target_layers, *retain_layers))
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
        peft_model: Any = get_peft_model(base, lora)
        pad_id = int(tokenizer.pad_token_id)
        ds_items = (
            encode_ds(tokenizer, self.ds, mask_mode=cfg.mask_mode, max_length=cfg.max_length)
            if cfg.rerouting
            else []
        )
        benign = [s for s in self.dr if s.subtype is not RetainKind.ADVERSARIAL_SAFE]
        adv_safe = [s for s in self.dr if s.subtype is RetainKind.ADVERSARIAL_SAFE]
        retain_items = encode_dr(
            tokenizer,
            [*benign, *adv_safe] if cfg.retain_on_adversarial_safe else benign,
            max_length=cfg.max_length,
            ce_on_adversarial_safe=False,
            ce_on_benign=cfg.benign_ce_weight > 0,
        )
        ce_items = (
            encode_dr(tokenizer, adv_safe, max_length=cfg.max_length, ce_on_adversarial_safe=True)
            if cfg.adv_safe_ce_weight > 0
            else []
        )
        if not retain_items:
            raise TrainerError("CircuitBreakerTrainer: no retain samples for the retain loss")
        params = [p for p in peft_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: _lr_factor(step, cfg))
        model, opt, sched = accelerator.prepare(peft_model, opt, sched)
        model.train()
        core: Any = accelerator.unwrap_model(model)  # the PeftModel (DDP-free) for adapter off
        decoder_layers = core.get_base_model().model.layers
        device = accelerator.device
        tracker = self._tracker(cfg, out)
        log_path = out / LOG_FILE
        t0 = time.perf_counter()
        nonfinite_steps: list[int] = []

        def batch_of(pool: Sequence[TrainItem], size: int) -> dict[str, Any]:
            rows = _collate(rng.sample(list(pool), min(size, len(pool))), pad_id)
            return {k: v.to(device) for k, v in rows.items()}

        def hidden(
            batch: dict[str, Any], layers: Sequence[int], *, adapter: bool, logits: bool = False
        ) -> tuple[dict[int, Any], Any]:
            """Hidden states at ``layers`` (and logits when asked) with the adapter on or off."""
            if adapter:
                return _capture(model, decoder_layers, batch, layers, logits=logits)
            with torch.no_grad(), core.disable_adapter():
                return _capture(model, decoder_layers, batch, layers, logits=False)

        with log_path.open("w", encoding="utf-8") as log:
            for step in range(cfg.steps):
                c_rr, c_retain = schedule(step, cfg.steps, cfg.alpha)
                row: dict[str, Any] = {
                    "step": step,
                    "c_rr": c_rr,
                    "c_retain": c_retain,
                    "lr": float(sched.get_last_lr()[0]),
                }
                total: Any = torch.zeros((), device=device)
                if cfg.rerouting:
                    batch = batch_of(ds_items, cfg.batch_size)
                    mine, _ = hidden(batch, cfg.target_layers, adapter=True)
                    ref, _ = hidden(batch, cfg.target_layers, adapter=False)
                    cos_mean, rr_loss = _rerouting_loss(mine, ref, batch["mask"], cfg.target_layers)
                    total = total + c_rr * rr_loss
                    row["rr/cos_sim_mean"] = float(cos_mean.detach())
                    row["loss/rr"] = float(rr_loss.detach())
                rbatch = batch_of(retain_items, cfg.batch_size)
                r_layers = retain_layers
                want_bce = cfg.benign_ce_weight > 0
                r_mine, r_logits = hidden(rbatch, r_layers, adapter=True, logits=want_bce)
                r_ref, _ = hidden(rbatch, r_layers, adapter=False)
                retain_loss = _retain_loss(r_mine, r_ref, rbatch["attention_mask"], r_layers)
                total = total + c_retain * retain_loss
                row["retain/l2"] = float(retain_loss.detach())
                row["loss/retain"] = float(retain_loss.detach())
                if want_bce:
                    bce = _masked_ce(r_logits, rbatch)
                    total = total + cfg.benign_ce_weight * bce
                    row["loss/ce_benign"] = float(bce.detach())
                if ce_items:
                    cbatch = batch_of(ce_items, cfg.ce_batch_size)
                    _, c_logits = hidden(cbatch, r_layers, adapter=True, logits=True)
                    ce_loss = _masked_ce(c_logits, cbatch)
                    total = total + cfg.adv_safe_ce_weight * ce_loss
                    row["loss/ce_adv_safe"] = float(ce_loss.detach())
                row["loss/total"] = float(total.detach())
                finite = all(math.isfinite(v) for k, v in row.items() if k.startswith("loss/"))
                row["finite"] = finite
                if finite:
                    opt.zero_grad(set_to_none=True)
                    accelerator.backward(total)
                    row["grad_norm"] = float(accelerator.clip_grad_norm_(params, cfg.max_grad_norm))
                    opt.step()
                    sched.step()
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
                tracker.log(
                    step,
                    {
                        k: v
                        for k, v in row.items()
                        if isinstance(v, int | float) and math.isfinite(float(v))
                    },
                )
                if not finite and cfg.stop_on_nonfinite:
                    tracker.finish(failed=True)
                    raise TrainerError(
                        f"circuit-breaker training hit a non-finite loss at step {step} "
                        f"({ {k: v for k, v in row.items() if k.startswith('loss/')} }); "
                        f"log: {log_path}. Lower learning_rate or alpha."
                    )
                if step % max(1, cfg.steps // 10) == 0 or step == cfg.steps - 1:
                    self.progress(
                        f"  cb step {step:>4}/{cfg.steps} total {row['loss/total']:.4f} "
                        f"cos {row.get('rr/cos_sim_mean', float('nan')):.3f} "
                        f"retain {row['retain/l2']:.3f} "
                        f"ce {row.get('loss/ce_adv_safe', float('nan')):.3f} "
                        f"({row['elapsed_s']:.0f}s)"
                    )
        tracker.summary({"final/loss_total": float(row["loss/total"]), "steps": cfg.steps})
        tracker.finish()
        core.eval()
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            core.save_pretrained(str(out / "adapter"))
            tokenizer.save_pretrained(str(out / "adapter"))
        return {
            "wall_s": round(time.perf_counter() - t0, 2),
            "steps": cfg.steps,
            "device": str(device),
            "nonfinite_steps": nonfinite_steps,
            "n_ds": len(ds_items),
            "n_dr": len(self.dr),
            "n_retain_l2": len(retain_items),
            "n_ce_targets": len(ce_items),
            "wandb": tracker.record(),
        }

    def _tracker(self, cfg: CircuitBreakerConfig, out: Path) -> Any:
        """The run's W&B tracker (mode from the settings; never touches ``os.environ``)."""
        from trainers.tracking import RunTracker

        arm = "cb" if cfg.rerouting else "adv_sft"
        return RunTracker(
            name=f"{arm}-seed{cfg.seed}-{out.name}",
            group="circuit_breaker",
            config=cfg.to_dict(),
            mode="disabled" if self.use_wandb is False else None,
            directory=out / "wandb",
        )


def load_adapter(artifact: Artifact, base_model_dir: Path) -> Any:
    """Base model + the trained adapter, in eval mode (a ``PeftModel``)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    model = PeftModel.from_pretrained(base, artifact.path / "adapter")
    model.eval()
    return model
