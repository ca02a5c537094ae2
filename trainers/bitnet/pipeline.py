"""The compression phase's embedded-default run, cached by config digest.

Steps (all on CPU, deterministic given the config):

1. train the full-precision tiny Llama on the arithmetic task (``task.py``) and
   save it as an fp32 ``save_pretrained`` checkpoint (plus a bf16 copy, for the
   size comparison) — or, with :func:`run_compression_checkpoint`, take any HF
   causal LM checkpoint (``--model``, the forge champion) and a question/answer
   task (:mod:`trainers.bitnet.qa_task`);
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
import json
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
from harness.cachekey import cache_key, refresh_requested, run_stamp
from harness.settings import get_settings
from trainers.base import config_digest, directory_digest, write_json_atomic
from trainers.bitnet import qa_task as qa
from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.packing import load_packed, save_packed
from trainers.bitnet.qa_task import QATask
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

__all__ = [
    "PRODUCER_MODULES",
    "CompressionRun",
    "CompressionRunConfig",
    "dir_bytes",
    "fp_dev_accuracy",
    "run_compression",
    "run_compression_checkpoint",
]


#: Modules whose source decides the compression run's trained and packed models and their
#: scores: the run itself, QAT (trainer, quant, config), the packed format (packing, and
#: kernel's pack/unpack it uses), the tasks and the arithmetic data.  Not the decode-speed
#: timing (``speed``, ``speed_run``: keyed by ``speed_run.SPEED_MODULES``, remeasured per
#: session) nor the input selection (``inputs``: its choice reaches the key as data), so
#: editing them does not retrain.  tests/trainers/bitnet/test_cachekey.py checks that every
#: ``trainers.bitnet`` module this one imports, directly or not, is listed.
PRODUCER_MODULES: tuple[str, ...] = (
    "trainers.bitnet.pipeline",
    "trainers.bitnet.trainer",
    "trainers.bitnet.quant",
    "trainers.bitnet.config",
    "trainers.bitnet.packing",
    "trainers.bitnet.kernel",
    "trainers.bitnet.task",
    "trainers.bitnet.qa_task",
    "harness.data.arithmetic",
)


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

    def digest(self, *, data: str | None = None) -> str:
        """Cache key over the producing code, library versions, this config and ``data``."""
        from harness.cachekey import cache_key

        return cache_key(
            "compression_run",
            modules=PRODUCER_MODULES,
            libraries=["torch", "transformers", "numba"],
            config=self.to_dict(),
            data=data,
            seed=self.seed,
        ).key


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
    #: the ``--no-cache`` run (settings' ``run_id``) that (re)built this result, if any
    built_by_run: str | None = None
    #: per layer: the staging order's sensitivity (mean KL, one layer ternary, untrained)
    sensitivity: dict[str, float] = field(default_factory=dict)
    #: token ids of up to 10 test prompts (the trained model's decode-speed prompts)
    speed_prompts: list[list[int]] = field(default_factory=list)
    #: the accuracy task: name, source, sizes (and format for question/answer tasks)
    task: dict[str, Any] = field(default_factory=dict)
    #: which model was compressed and why (set by the caller: embedded / checkpoint / forge)
    input: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> CompressionRun:
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


@dataclass
class _Task:
    """What training and evaluation need of a task, whatever its tokenization."""

    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    dev_metric: Callable[[nn.Module], float]
    sample_batch: Callable[[torch.Generator, int], torch.Tensor]
    probe: torch.Tensor
    test_correct: Callable[[nn.Module], list[int]]
    test_answers: Callable[[nn.Module], list[str]]
    item_ids: list[str]
    targets: list[str]
    data_digest: str
    speed_prompts: list[list[int]]
    info: dict[str, Any]


def _addition_task(cfg: CompressionRunConfig) -> tuple[_Task, torch.Tensor]:
    splits = make_splits(seed=cfg.seed, n_dev=cfg.n_dev, n_test=cfg.n_test)
    ids = {k: torch.from_numpy(encode_items(s.a, s.b)) for k, s in splits.items()}
    train, dev, test = ids["train"], ids["dev"], ids["test"]
    task = _Task(
        loss_fn=_answer_loss,
        dev_metric=lambda m: float(exact_match(m, dev).mean()),
        sample_batch=lambda g, n: train[torch.randint(0, len(train), (n,), generator=g)],
        probe=dev[:256, :-1],
        test_correct=lambda m: exact_match(m, test).astype(int).tolist(),
        test_answers=lambda m: predictions(m, test),
        item_ids=splits["test"].item_ids(),
        targets=["".join(str(int(t)) for t in row) for row in test[:, PROMPT_LEN:]],
        data_digest=config_digest(
            {"splits": {k: v.tolist() for k, v in ids.items() if k != "train"}}
        ),
        speed_prompts=test[:10, :PROMPT_LEN].tolist(),
        info={
            "name": "reversed two-digit addition (trainers.bitnet.task)",
            "n": {k: len(v) for k, v in ids.items()},
        },
    )
    return task, train


def _qa_task(task: QATask, tokenizer: Any) -> _Task:
    enc = {k: qa.encode(v, tokenizer, task.fmt) for k, v in task.splits.items()}
    train, dev, test = enc["train"].packed(), enc["dev"], enc["test"]
    return _Task(
        loss_fn=qa.qa_loss,
        dev_metric=lambda m: float(qa.exact_match(m, dev).mean()),
        sample_batch=lambda g, n: train[torch.randint(0, len(train), (n,), generator=g)],
        probe=dev.ids[:64, : max(e for _, e in dev.spans[:64])],
        test_correct=lambda m: qa.exact_match(m, test).tolist(),
        test_answers=lambda m: qa.predictions(m, test, tokenizer),
        item_ids=[f"test-{i:04d}" for i in range(len(test))],
        targets=test.targets,
        data_digest=task.digest(),
        speed_prompts=[test.ids[i, :s].tolist() for i, (s, _) in enumerate(test.spans[:10])],
        info={"name": task.name, "source": task.source, "format": asdict(task.fmt),
              "n": {k: len(v) for k, v in task.splits.items()}},
    )  # fmt: skip


def _compress(
    cfg: CompressionRunConfig,
    digest: str,
    work: Path,
    fp: nn.Module,
    task: _Task,
    progress: Callable[[str], None],
    wall: dict[str, float],
) -> CompressionRun:
    """Staged QAT of ``fp`` (saved as ``work/fp32``), pack, reload, evaluate, controls."""
    paths = {k: work / k for k in ("fp32", "bf16", "packed", "identity", "zeroed")}
    fp = fp.float().eval()
    copy.deepcopy(fp).to(torch.bfloat16).save_pretrained(paths["bf16"])  # type: ignore[operator]
    t0 = time.perf_counter()
    trainer = BitNetTrainer(
        cfg.bitnet,
        loss_fn=task.loss_fn,
        dev_metric=task.dev_metric,
        sample_batch=task.sample_batch,
        probe=task.probe,
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
    subjects = {"fp32": fp, "bitnet": loaded, "identity": fp, "zeroed": zeroed}
    return CompressionRun(
        config_digest=digest,
        paths={k: str(v) for k, v in paths.items()},
        sizes={k: dir_bytes(v) for k, v in paths.items()},
        model_digests={k: directory_digest(v) for k, v in paths.items()},
        data_digest=task.data_digest,
        item_ids=task.item_ids,
        targets=task.targets,
        correct={k: task.test_correct(m) for k, m in subjects.items()},
        answers={k: task.test_answers(m) for k, m in subjects.items()},
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
        sensitivity=result.sensitivity,
        speed_prompts=task.speed_prompts,
        task=task.info,
    )


def _run(
    cfg: CompressionRunConfig, digest: str, root: Path, progress: Callable[[str], None]
) -> CompressionRun:
    from transformers import LlamaForCausalLM

    torch.set_num_threads(cfg.threads)
    task, train = _addition_task(cfg)
    work = root / f"compression-{digest[:12]}"
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("compression: training the full-precision model")
    _train_fp(cfg, train, work / "fp32")
    fp = LlamaForCausalLM.from_pretrained(work / "fp32", dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    wall["fp_train"] = time.perf_counter() - t0
    return _compress(cfg, digest, work, fp, task, progress, wall)


def _run_checkpoint(
    cfg: CompressionRunConfig,
    digest: str,
    root: Path,
    progress: Callable[[str], None],
    *,
    model_dir: Path,
    task: QATask,
) -> CompressionRun:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(cfg.threads)
    work = root / f"compression-{digest[:12]}"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    fp = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()  # type: ignore[no-untyped-call, unused-ignore]
    fp.save_pretrained(work / "fp32")  # the fp32 baseline on disk, whatever the input's dtype
    return _compress(cfg, digest, work, fp, _qa_task(task, tokenizer), progress, {})


def _cached(
    digest: str, cache_dir: Path, build: Callable[[Path], CompressionRun]
) -> CompressionRun:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result_path = cache_dir / f"compression-{digest[:12]}.json"
    with FileLock(str(result_path) + ".lock"):
        if result_path.is_file():
            run = CompressionRun.load(result_path)
            # --no-cache (settings.no_cache): recompute once per run
            fresh = not refresh_requested(run.built_by_run)
            if fresh and all(Path(p).exists() for p in run.paths.values()):
                return run
        with quiet_progress():
            run = build(cache_dir)
        run.built_by_run = run_stamp()
        write_json_atomic(result_path, asdict(run))
        return run


def run_compression(
    config: CompressionRunConfig | None = None,
    *,
    cache_dir: Path,
    progress: Callable[[str], None] = print,
) -> CompressionRun:
    """Run (or reuse) training, packing and evaluation; safe from several xdist workers."""
    cfg = config or CompressionRunConfig()
    digest = cfg.digest()
    return _cached(digest, cache_dir, lambda root: _run(cfg, digest, root, progress))


def run_compression_checkpoint(
    model_dir: Path,
    task: QATask,
    config: CompressionRunConfig | None = None,
    *,
    cache_dir: Path,
    progress: Callable[[str], None] = print,
) -> CompressionRun:
    """Compress a user's HF causal LM checkpoint, judged on ``task`` (cached by content)."""
    cfg = config or CompressionRunConfig()
    digest = cfg.digest(data=f"{directory_digest(Path(model_dir))}:{task.digest()}")
    return _cached(
        digest,
        cache_dir,
        lambda root: _run_checkpoint(
            cfg, digest, root, progress, model_dir=Path(model_dir), task=task
        ),
    )


def accuracy(values: list[int]) -> float:
    return float(np.mean(values)) if values else float("nan")


def fp_dev_accuracy(model_dir: Path, task: QATask, *, cache_dir: Path) -> float:
    """Full-precision exact match of ``model_dir`` on ``task``'s *dev* split (cached by content).

    Used to decide whether a checkpoint (the forge champion) is a meaningful input
    before compressing it; the judged test split is not touched here.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = cache_key(
        "fp_dev",
        modules=PRODUCER_MODULES,
        libraries=["torch", "transformers"],
        data=f"{directory_digest(model_dir)}:{task.digest()}",
    ).key
    path = Path(cache_dir) / f"fp-dev-{key[:16]}.json"
    if path.is_file() and not get_settings().no_cache:
        return float(json.loads(path.read_text(encoding="utf-8"))["accuracy"])
    with quiet_progress():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()  # type: ignore[no-untyped-call, unused-ignore]
    value = float(qa.exact_match(model, qa.encode(task.splits["dev"], tokenizer, task.fmt)).mean())
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"accuracy": value, "model_dir": str(model_dir), "task": task.name})
    return value
