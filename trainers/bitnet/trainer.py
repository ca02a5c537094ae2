"""``BitNetTrainer``: staged BitNet b1.58 QAT from a full-precision HF model, per-layer fallback.

Post-training ternarization of a small model destroys it, so the trainer
fine-tunes with the quantizer in the loop (straight-through estimator) and
turns layers ternary in *stages*.  The unit of the fallback is one linear layer
(q/k/v/o/gate/up/down …):

1. measure the dev metric of the full-precision model, ``m_fp``, and each
   linear layer's **sensitivity**: the mean KL divergence of the model's
   next-token distribution on the probe inputs when that layer *alone* is
   ternarized without training (one forward pass per layer, no QAT);
2. order the layers least sensitive first and cut the order into
   ``config.stages`` stages of about equal size.  Why this order: layers of
   similar sensitivity share a stage, so the easy stages pass in one round
   and the layers most likely to cost too much come together, last — a
   rollback then discards only their own QAT, never the adaptation the
   accepted stages already paid for, and the bisection below starts from
   the smallest suspicious set;
3. per stage: snapshot the weights, make its linears ``BitLinear``, fine-tune
   the whole model in rounds of ``steps_per_stage`` steps and measure the dev
   metric after each round (and every ternary layer's output cosine); accept
   at the first round that reaches ``(1 − dev_budget) · m_fp``.  A stage that
   never does is rolled back; if it has several layers it is split in two
   halves that are tried in turn (bisection), and a *single* layer that still
   misses the threshold — given every layer accepted before it — stays in
   high precision: a **fallback** layer, listed in the result, the artifact
   header and the gate evidence;
4. fine-tune ``final_steps`` more, freeze the codes, round every non-ternary
   tensor to its storage dtype (so the evaluated model *is* the stored one).

Decisions use only the dev split the caller provides; the judged test split
is never seen here.  Per-layer sparsity, scale and output cosine (quantized
layer vs the original full-precision layer on the same dev inputs) are
measured after every stage and on the final model.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import TrainerError
from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.packing import round_to_storage
from trainers.bitnet.quant import BitLinear, ternary_linears, to_bitlinear, to_linear

__all__ = ["BitNetResult", "BitNetTrainer", "LayerStat", "StageRecord", "split_stages"]

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
DevMetric = Callable[[nn.Module], float]
SampleBatch = Callable[[torch.Generator, int], torch.Tensor]


@dataclass
class StageRecord:
    """One stage: which layers it tried, the dev metric after fine-tuning, and the verdict."""

    stage: int
    layers: list[str]
    dev_metric: float
    threshold: float
    accepted: bool
    rounds: int = 1
    #: output cosine of every ternary layer after this stage (vs its fp layer, same inputs)
    cosines: dict[str, float] = field(default_factory=dict)


@dataclass
class LayerStat:
    """A linear layer of the final model: ternary or fallback, and what quantization did to it."""

    name: str
    ternary: bool
    n_weights: int
    zeros: int
    sparsity: float
    scale: float | None
    cosine: float


@dataclass
class BitNetResult:
    """The quantized model (eval mode, stored precision) and the record of how it was made."""

    model: nn.Module
    fp_dev_metric: float
    final_dev_metric: float
    stages: list[StageRecord]
    layers: list[LayerStat]
    log: list[dict[str, Any]] = field(default_factory=list)
    #: per layer: mean KL(fp ‖ one-layer-ternary) on the probe, the staging order's key
    sensitivity: dict[str, float] = field(default_factory=dict)

    @property
    def ternary_layers(self) -> list[str]:
        return [s.name for s in self.layers if s.ternary]

    @property
    def fallback_layers(self) -> list[str]:
        return [s.name for s in self.layers if not s.ternary]


def split_stages(order: list[str], stages: int) -> list[list[str]]:
    """Cut ``order`` into ``stages`` contiguous groups of about equal size (none empty)."""
    k = max(1, min(stages, len(order)))
    base, extra = divmod(len(order), k)
    out, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append(order[start : start + size])
        start += size
    return [g for g in out if g]


class BitNetTrainer:
    """Staged QAT of a ``PreTrainedModel`` into BitNet b1.58 form (see the module docstring).

    The task is injected: ``loss_fn(model, batch)``, ``dev_metric(model)`` (higher
    is better; called in eval mode), ``sample_batch(generator, size)`` and a
    ``probe`` input batch (dev inputs) for the per-layer cosines.
    """

    def __init__(
        self,
        config: BitNetConfig,
        *,
        loss_fn: LossFn,
        dev_metric: DevMetric,
        sample_batch: SampleBatch,
        probe: torch.Tensor,
        progress: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.config = config
        self.loss_fn = loss_fn
        self.dev_metric = dev_metric
        self.sample_batch = sample_batch
        self.probe = probe
        self.progress = progress
        self.log: list[dict[str, Any]] = []
        self._step = 0

    def train(self, fp_model: nn.Module) -> BitNetResult:
        """Return the quantized copy of ``fp_model`` (which is left untouched)."""
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        fp_model.eval()
        fp_dev = float(self.dev_metric(fp_model))
        threshold = (1.0 - cfg.dev_budget) * fp_dev
        model = copy.deepcopy(fp_model)
        names = ternary_linears(model)
        sensitivity = self._sensitivity(model, names)
        order = sorted(names, key=lambda n: (sensitivity[n], names.index(n)))
        queue = deque(split_stages(order, cfg.stages))
        stages: list[StageRecord] = []
        while queue:
            group = queue.popleft()
            record = self._stage(model, fp_model, group, len(stages), gen, threshold)
            stages.append(record)
            self.progress(
                f"stage {record.stage}: {len(group)} layer(s), dev {record.dev_metric:.3f} "
                f"(threshold {threshold:.3f}) → "
                + ("ternary" if record.accepted else "rolled back")
            )
            if not record.accepted and len(group) > 1:
                half = (len(group) + 1) // 2
                queue.extendleft([group[half:], group[:half]])  # bisect: first half next
        if any(isinstance(m, BitLinear) for m in model.modules()) and cfg.final_steps:
            self._fit(model, cfg.final_steps, gen, stage=len(stages))
        model.eval()
        round_to_storage(model, cfg.high_precision)
        final_dev = self._dev(model)
        layers = self._layer_stats(model, fp_model)
        return BitNetResult(model, fp_dev, final_dev, stages, layers, self.log, sensitivity)

    def _stage(
        self,
        model: nn.Module,
        fp_model: nn.Module,
        group: list[str],
        index: int,
        gen: torch.Generator,
        threshold: float,
    ) -> StageRecord:
        """Make ``group`` ternary and fine-tune in rounds; roll back if it misses ``threshold``."""
        cfg = self.config
        snapshot = copy.deepcopy(model.state_dict())
        to_bitlinear(model, group)
        rounds, accepted, dev = 0, False, float("nan")
        while not accepted and rounds < cfg.stage_rounds:
            self._fit(model, cfg.steps_per_stage, gen, stage=index)
            dev = self._dev(model)
            accepted = dev >= threshold
            rounds += 1
        ternary = [n for n, m in model.named_modules() if isinstance(m, BitLinear)]
        cosines = {s.name: s.cosine for s in self._layer_stats(model, fp_model, ternary)}
        if not accepted:
            to_linear(model, group)
            model.load_state_dict(snapshot)
        return StageRecord(index, list(group), dev, threshold, accepted, rounds, cosines)

    def _sensitivity(self, model: nn.Module, names: list[str]) -> dict[str, float]:
        """Per layer: mean KL(fp ‖ this layer alone ternary, untrained) of the next-token law."""
        model.eval()
        with torch.no_grad():
            ref = F.log_softmax(model(input_ids=self.probe).logits.float(), dim=-1)
            out = {}
            for name in names:
                to_bitlinear(model, [name])  # eval mode: frozen codes of the current weight
                logq = F.log_softmax(model(input_ids=self.probe).logits.float(), dim=-1)
                to_linear(model, [name])
                kl = (ref.exp() * (ref - logq)).sum(-1).mean()
                out[name] = float(kl)
        return out

    def _dev(self, model: nn.Module) -> float:
        model.eval()
        value = float(self.dev_metric(model))
        self.log.append({"step": self._step, "dev_metric": value})
        return value

    def _fit(self, model: nn.Module, steps: int, gen: torch.Generator, *, stage: int) -> None:
        cfg = self.config
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=max(steps, 2), pct_start=0.1
        )
        for s in range(steps):
            loss = self.loss_fn(model, self.sample_batch(gen, cfg.batch_size))
            value = float(loss.detach().item())
            if not math.isfinite(value):
                raise TrainerError(f"BitNet QAT diverged: loss {value} at step {self._step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            self._step += 1
            if s % cfg.log_every == 0 or s == steps - 1:
                self.log.append(
                    {
                        "step": self._step,
                        "stage": stage,
                        "loss": value,
                        "lr": float(sched.get_last_lr()[0]),
                    }
                )
        model.eval()

    def _layer_stats(
        self, model: nn.Module, fp_model: nn.Module, names: list[str] | None = None
    ) -> list[LayerStat]:
        names = ternary_linears(fp_model) if names is None else names
        inputs: dict[str, torch.Tensor] = {}
        hooks = [
            model.get_submodule(n).register_forward_hook(
                lambda _m, args, _out, n=n: inputs.__setitem__(n, args[0].detach())
            )
            for n in names
        ]
        try:
            with torch.no_grad():
                model(input_ids=self.probe)
        finally:
            for h in hooks:
                h.remove()
        stats = []
        for n in names:
            mod = model.get_submodule(n)
            ref_w = fp_model.get_submodule(n).weight.detach().float()  # type: ignore[operator]
            with torch.no_grad():
                y_q = mod(inputs[n]).flatten().float()
                y_fp = F.linear(inputs[n].float(), ref_w).flatten()
            cos = float(F.cosine_similarity(y_q, y_fp, dim=0))
            if isinstance(mod, BitLinear) and mod.codes is not None and mod.scale is not None:
                zeros = int((mod.codes == 0).sum())
                n_w = mod.codes.numel()
                stats.append(LayerStat(n, True, n_w, zeros, zeros / n_w, float(mod.scale), cos))
            else:
                n_w = ref_w.numel()
                stats.append(LayerStat(n, False, n_w, 0, 0.0, None, cos))
        return stats
