"""Decode-speed measurements of the compression phase (redone every session, not cached long).

Two subjects, each timed full-precision vs packed ternary on the *same* prompts
with the order rotating per prompt (:func:`trainers.bitnet.speed.interleaved_decode`):

* ``wide`` — a RANDOMLY INITIALISED Llama of realistic width (hidden 2048,
  ≥ 0.5 GB of fp32 weights; built in memory, never saved): the regime where
  batch-1 decode is memory-bound and the gate is decided.  A third arm,
  ``fp32_repeat`` (the same fp32 model again), is the do-nothing control: its
  "speedup" must FAIL;
* ``tiny`` — the trained embedded model, fp32 checkpoint vs the loaded packed
  artifact, reported beside it (at hidden 128 fp32 BLAS is expected to win).

The results go to ``<cache>/speed-<digest>-<session>.json`` under a file lock, so
several xdist workers of one session share one measurement.
"""

from __future__ import annotations

import gc
import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from harness.atomic import atomic_write_json
from harness.backends.hf import quiet_progress
from harness.cachekey import cache_key
from harness.machine_load import LoadMonitor
from trainers.bitnet.packing import load_packed
from trainers.bitnet.speed import (
    bytes_per_token,
    interleaved_decode,
    measure_bandwidth,
    packed_copy,
    summary,
    wide_random_llama,
)

__all__ = ["SpeedConfig", "measure_speed"]


#: the measurement code (its source keys the per-session result file)
SPEED_MODULES = ("trainers.bitnet.speed", "trainers.bitnet.speed_run", "trainers.bitnet.kernel")


@dataclass(frozen=True)
class SpeedConfig:
    """Shapes and repetitions of the decode-speed measurement."""

    wide_hidden: int = 2048
    wide_intermediate: int = 5632
    wide_layers: int = 3
    wide_heads: int = 16
    wide_vocab: int = 512
    prompts: int = 10
    prompt_len: int = 16
    new_tokens: int = 12
    tiny_new_tokens: int = 8
    threads: int = 1
    bandwidth_mbytes: int = 512
    seed: int = 0

    def digest(self) -> str:
        """Key of the measurement code, torch version and config (nothing hand-bumped)."""
        return cache_key(
            "speed",
            modules=SPEED_MODULES,
            libraries=("torch",),
            config=asdict(self),
            seed=self.seed,
        ).key


def _timed(
    models: dict[str, torch.nn.Module], prompts: list[torch.Tensor], new: int, threads: int
) -> dict[str, Any]:
    """Interleaved decode timings plus the machine load while they were taken.

    The load reading (sampled before, after and between prompts; process CPU
    seconds over wall seconds) goes into the evidence; the decision layer turns a
    FAIL timed on an overloaded machine into INCONCLUSIVE (harness.machine_load).
    """
    with LoadMonitor(threads=threads) as monitor:
        timings = interleaved_decode(
            models, prompts, new_tokens=new, threads=threads, between=monitor.sample
        )
    nbytes = {k: bytes_per_token(m) for k, m in models.items()}
    assert monitor.reading is not None  # set on leaving the block
    return {
        "seconds_per_token": {k: t.seconds_per_token for k, t in timings.items()},
        "bytes_per_token": nbytes,
        "summary": summary(timings, nbytes),
        "machine_load": monitor.reading.model_dump(mode="json"),
    }


def _wide(cfg: SpeedConfig) -> dict[str, Any]:
    fp = wide_random_llama(
        hidden=cfg.wide_hidden,
        intermediate=cfg.wide_intermediate,
        layers=cfg.wide_layers,
        heads=cfg.wide_heads,
        vocab=cfg.wide_vocab,
        seed=cfg.seed,
    )
    linear = sum(m.weight.numel() for m in fp.modules() if isinstance(m, torch.nn.Linear))
    packed = packed_copy(fp)
    gen = torch.Generator().manual_seed(cfg.seed)
    prompts = [
        torch.randint(0, cfg.wide_vocab, (1, cfg.prompt_len), generator=gen)
        for _ in range(cfg.prompts)
    ]
    out = _timed(
        {"fp32": fp, "ternary": packed, "fp32_repeat": fp}, prompts, cfg.new_tokens, cfg.threads
    )
    out.update(
        label="random initialisation (decode speed only; never trained)",
        linear_params=linear,
        fp32_linear_weight_bytes=4 * linear,
        fp32_weight_bytes=4 * sum(p.numel() for p in fp.parameters()),
        shape={
            "hidden": cfg.wide_hidden,
            "intermediate": cfg.wide_intermediate,
            "layers": cfg.wide_layers,
            "vocab": cfg.wide_vocab,
        },
    )
    del fp, packed
    gc.collect()
    return out


def _tiny(
    cfg: SpeedConfig, fp_dir: Path, packed_dir: Path, prompts: list[torch.Tensor]
) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    with quiet_progress():
        fp = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
    packed = load_packed(packed_dir, kernels=True)
    out = _timed({"fp32": fp, "ternary": packed}, prompts, cfg.tiny_new_tokens, cfg.threads)
    out["label"] = "the compressed input model (fp32 checkpoint vs loaded packed artifact)"
    return out


def measure_speed(
    cfg: SpeedConfig,
    *,
    fp_dir: Path,
    packed_dir: Path,
    tiny_prompts: list[torch.Tensor],
    cache_dir: Path,
    session: str,
) -> dict[str, Any]:
    """Measure (once per ``session``) bandwidth and both subjects' interleaved decode."""
    path = Path(cache_dir) / f"speed-{cfg.digest()[:12]}-{session}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return dict(json.loads(path.read_text(encoding="utf-8")))
        t0 = time.perf_counter()
        result = {
            "config": asdict(cfg),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "threads": cfg.threads,
                "torch": torch.__version__,
            },
            "bandwidth_GBps": measure_bandwidth(mbytes=cfg.bandwidth_mbytes, threads=cfg.threads),
            "wide": _wide(cfg),
            "tiny": _tiny(cfg, fp_dir, packed_dir, tiny_prompts),
        }
        result["wall_s"] = time.perf_counter() - t0
        atomic_write_json(path, result)
        return result
