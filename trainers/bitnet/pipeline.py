"""The compression phase's embedded-default run, cached by config digest.

Steps (all on CPU, deterministic given the config):

1. train the full-precision tiny Llama on the arithmetic task (``task.py``) and
   save it as an fp32 ``save_pretrained`` checkpoint (plus a bf16 copy, for the
   size comparison) — or take ``--model``'s checkpoint when one is given;
2. ``BitNetTrainer``: staged QAT with dev-split fallback (``trainer.py``);
3. write the packed artifact (``packing.py``), load it back, and evaluate the
   *loaded* artifact and the fp32 model on the held-out test split;
4. controls: a do-nothing compressor (the artifact is the fp32 checkpoint) and
   a zeroing compressor (every ternary code 0), through the same path.

The decode-speed measurement is separate (:mod:`trainers.bitnet.speed_run`):
it measures the machine, so it is redone per session, while this run —
training and sizes — is reused from ``<cache>/compression-<digest>.json``.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from harness.backends.hf import quiet_progress
from trainers.base import config_digest, directory_digest, write_json_atomic
from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.packing import load_packed, save_packed
from trainers.bitnet.quant import BitLinear
from trainers.bitnet.task import (
    PROMPT_LEN,
    encode_items,
    exact_match,
    make_splits,
    predictions,
    tiny_llama,
)
from trainers.bitnet.trainer import BitNetResult, BitNetTrainer

__all__ = ["CompressionRun", "CompressionRunConfig", "dir_bytes", "run_compression"]


@dataclass(frozen=True)
class CompressionRunConfig:
    """Every knob of the embedded-default run (its digest keys the cache)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    fp_steps: int = 600
    fp_lr: float = 3e-3
    fp_batch: int = 128
    n_dev: int = 500
    n_test: int = 1500
    seed: int = 0
    threads: int = 1
    bitnet: BitNetConfig = field(default_factory=BitNetConfig)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bitnet"] = self.bitnet.to_dict()
        return out

    def digest(self) -> str:
        return config_digest({"compression_run": 1, **self.to_dict()})


@dataclass
class CompressionRun:
    """What the gates read (JSON round-trippable)."""

    config_digest: str
    paths: dict[str, str]
    sizes: dict[str, int]
    model_digests: dict[str, str]
    data_digest: str
    item_ids: list[str]
    targets: list[str]
    correct: dict[str, list[int]]
    answers: dict[str, list[str]]
    ternary_weights: dict[str, dict[str, int]]
    fp_dev_metric: float
    final_dev_metric: float
    stages: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    log: list[dict[str, Any]]
    wall_s: dict[str, float]
    #: the offline W&B run of the QAT (``RunTracker.record()``)
    tracking: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> CompressionRun:
        import json

        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def dir_bytes(path: str | Path) -> int:
    """Bytes on disk of every file below ``path`` (the artifact as shipped)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _answer_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch[:, :-1]).logits[:, PROMPT_LEN - 1 :]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, PROMPT_LEN:].reshape(-1))


def _train_fp(cfg: CompressionRunConfig, train: torch.Tensor, out: Path) -> None:
    model = tiny_llama(
        hidden=cfg.hidden,
        layers=cfg.layers,
        heads=cfg.heads,
        intermediate=cfg.intermediate,
        seed=cfg.seed,
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.fp_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.fp_lr, total_steps=cfg.fp_steps, pct_start=0.1
    )
    model.train()
    for _ in range(cfg.fp_steps):
        batch = train[torch.randint(0, len(train), (cfg.fp_batch,), generator=gen)]
        loss = _answer_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(out)


def _zeroed(model: nn.Module) -> nn.Module:
    """The zeroing control: every ternary code set to 0 (the model outputs no information)."""
    z = copy.deepcopy(model)
    for mod in z.modules():
        if isinstance(mod, BitLinear) and mod.codes is not None:
            mod.codes = torch.zeros_like(mod.codes)
    return z


def _ternary_counts(model: nn.Module) -> dict[str, int]:
    zeros = total = 0
    for mod in model.modules():
        if isinstance(mod, BitLinear) and mod.codes is not None:
            zeros += int((mod.codes == 0).sum())
            total += mod.codes.numel()
    return {"zeros": zeros, "total": total}


def _track(
    cfg: CompressionRunConfig, digest: str, result: BitNetResult, directory: Path
) -> dict[str, Any]:
    """Training curves and per-layer sparsity / scale / cosine to an offline W&B run."""
    from trainers.tracking import RunTracker

    with RunTracker(
        name=f"bitnet-qat-{digest[:8]}", config=cfg.to_dict(), group="compression",
        directory=directory,
    ) as tracker:  # fmt: skip
        for row in result.log:
            tracker.log(row["step"], {k: v for k, v in row.items() if k not in ("step", "stage")})
        summary: dict[str, Any] = {
            "dev/fp32": result.fp_dev_metric,
            "dev/bitnet": result.final_dev_metric,
            "fallback_layers": len(result.fallback_layers),
        }
        for layer in result.layers:
            summary[f"layer/{layer.name}/sparsity"] = layer.sparsity
            summary[f"layer/{layer.name}/cosine"] = layer.cosine
            if layer.scale is not None:
                summary[f"layer/{layer.name}/scale"] = layer.scale
        tracker.summary(summary)
    return tracker.record()


def _run(
    cfg: CompressionRunConfig, digest: str, root: Path, progress: Callable[[str], None]
) -> CompressionRun:
    from transformers import LlamaForCausalLM

    torch.set_num_threads(cfg.threads)
    splits = make_splits(seed=cfg.seed, n_dev=cfg.n_dev, n_test=cfg.n_test)
    ids = {k: torch.from_numpy(encode_items(s.a, s.b)) for k, s in splits.items()}
    work = root / f"compression-{digest[:12]}"
    paths = {k: work / k for k in ("fp32", "bf16", "packed", "identity", "zeroed")}
    wall: dict[str, float] = {}

    t0 = time.perf_counter()
    progress("compression: training the full-precision model")
    _train_fp(cfg, ids["train"], paths["fp32"])
    fp = LlamaForCausalLM.from_pretrained(paths["fp32"], dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    fp.to(torch.bfloat16).save_pretrained(paths["bf16"])
    fp = fp.float().eval()
    wall["fp_train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainer = BitNetTrainer(
        cfg.bitnet,
        loss_fn=_answer_loss,
        dev_metric=lambda m: float(exact_match(m, ids["dev"]).mean()),
        sample_batch=lambda g, n: ids["train"][
            torch.randint(0, len(ids["train"]), (n,), generator=g)
        ],
        probe=ids["dev"][:256, :-1],
        progress=progress,
    )
    result = trainer.train(fp)
    wall["qat"] = time.perf_counter() - t0
    tracking = _track(cfg, digest, result, work / "wandb")

    meta = {"fallback_layers": result.fallback_layers, "dev_budget": cfg.bitnet.dev_budget}
    save_packed(result.model, paths["packed"], high_precision=cfg.bitnet.high_precision, meta=meta)
    save_packed(_zeroed(result.model), paths["zeroed"], high_precision=cfg.bitnet.high_precision)
    shutil.copytree(paths["fp32"], paths["identity"], dirs_exist_ok=True)
    loaded = load_packed(paths["packed"])
    zeroed = load_packed(paths["zeroed"])
    test = ids["test"]
    subjects = {"fp32": fp, "bitnet": loaded, "identity": fp, "zeroed": zeroed}
    correct = {k: exact_match(m, test).astype(int).tolist() for k, m in subjects.items()}
    answers = {k: predictions(m, test) for k, m in subjects.items()}
    targets = ["".join(str(int(t)) for t in row) for row in test[:, PROMPT_LEN:]]
    return CompressionRun(
        config_digest=digest,
        paths={k: str(v) for k, v in paths.items()},
        sizes={k: dir_bytes(v) for k, v in paths.items()},
        model_digests={k: directory_digest(v) for k, v in paths.items()},
        data_digest=config_digest(
            {"splits": {k: v.tolist() for k, v in ids.items() if k != "train"}}
        ),
        item_ids=splits["test"].item_ids(),
        targets=targets,
        correct=correct,
        answers=answers,
        ternary_weights={
            "bitnet": _ternary_counts(loaded),
            "zeroed": _ternary_counts(zeroed),
            "identity": {"zeros": 0, "total": 0},
        },
        fp_dev_metric=result.fp_dev_metric,
        final_dev_metric=result.final_dev_metric,
        stages=[asdict(s) for s in result.stages],
        layers=[asdict(s) for s in result.layers],
        log=result.log,
        wall_s=wall,
        tracking=tracking,
    )


def run_compression(
    config: CompressionRunConfig | None = None,
    *,
    cache_dir: Path,
    progress: Callable[[str], None] = print,
) -> CompressionRun:
    """Run (or reuse) training, packing and evaluation; safe from several xdist workers."""
    cfg = config or CompressionRunConfig()
    digest = cfg.digest()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result_path = cache_dir / f"compression-{digest[:12]}.json"
    with FileLock(str(result_path) + ".lock"):
        if result_path.is_file():
            run = CompressionRun.load(result_path)
            if all(Path(p).exists() for p in run.paths.values()):
                return run
        with quiet_progress():
            run = _run(cfg, digest, cache_dir, progress)
        write_json_atomic(result_path, asdict(run))
        return run


def accuracy(values: list[int]) -> float:
    return float(np.mean(values)) if values else float("nan")
