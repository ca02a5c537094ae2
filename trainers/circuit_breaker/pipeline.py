"""The circuit-breaker phase end to end on the embedded default (CPU, tiny model).

1. build the tiny base model (``trainers.tiny``) and draw the synthetic world;
2. audit the format of every training sample through the tokenizer's template;
3. SFT a *vulnerable baseline* (it learns tool calls and to follow injections);
4. filter Ds candidates to the baseline's true failures (report the dropped);
5. train two LoRA arms on the baseline with identical data and LoRA settings:
   ``adv_sft`` (retain + CE on adversarial-safe, no rerouting) and ``cb``
   (rerouting + retain + CE);
6. evaluate baseline / adv_sft / cb on the held-out eval split.

Everything is cached under ``cache_dir`` by digest, and the whole result is
written as one JSON (raw outputs included) so gates in separate pytest workers
read the same run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from trainers.base import config_digest, write_json_atomic

from .config import CircuitBreakerConfig
from .data import Label, RetainKind, Sample, Split, WorldConfig, generate_world
from .eval import ItemResult, evaluate, filter_true_failures
from .format_audit import audit_sample, encode_completion

__all__ = ["ARMS", "PhaseRun", "PhaseRunConfig", "run_phase"]

ARMS = ("baseline", "adv_sft", "cb")


def _default_tiny() -> dict[str, Any]:
    return {
        "vocab_size": 2048,
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "initializer_range": 0.02,
        "corpus_snippets": 400,
    }


@dataclass(frozen=True)
class PhaseRunConfig:
    """Every knob of the embedded-default run; its digest keys the cached result."""

    world: WorldConfig = field(default_factory=WorldConfig)
    tiny: dict[str, Any] = field(default_factory=_default_tiny)
    baseline_steps: int = 250
    baseline_lr: float = 3e-3
    baseline_batch: int = 16
    cb: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    eval_batch: int = 50
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cb"] = self.cb.to_dict()
        out["world"] = self.world.to_dict()
        return out

    def digest(self) -> str:
        return config_digest({"phase_run": 1, **self.to_dict()})


@dataclass
class PhaseRun:
    """What the gates read: data counts, audit problems, training logs, per-arm results."""

    config_digest: str
    counts: dict[str, int]
    format_problems: list[str]
    n_audited: int
    ds_dropped: int
    ds_candidates: int
    model_digests: dict[str, str]
    data_digest: str
    train_logs: dict[str, list[dict[str, Any]]]
    results: dict[str, list[dict[str, Any]]]
    wall_s: dict[str, float]

    def arm(self, name: str) -> list[ItemResult]:
        return [
            ItemResult(**{**r, "coherence_reasons": tuple(r["coherence_reasons"])})
            for r in self.results[name]
        ]

    @classmethod
    def load(cls, path: Path) -> PhaseRun:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def run_phase(
    config: PhaseRunConfig | None = None,
    *,
    cache_dir: Path,
    progress: Callable[[str], None] = print,
) -> PhaseRun:
    """Run (or reuse) the whole phase; safe to call from several xdist workers at once."""
    cfg = config or PhaseRunConfig()
    digest = cfg.digest()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result_path = cache_dir / f"cb-phase-{digest[:12]}.json"
    with FileLock(str(result_path) + ".lock"):
        if result_path.is_file():
            return PhaseRun.load(result_path)
        run = _run(cfg, digest, cache_dir, progress)
        write_json_atomic(result_path, asdict(run))
        return run


def _filtered_ds(
    model: Any,
    tokenizer: Any,
    candidates: list[Sample],
    cfg: PhaseRunConfig,
    baseline_digest: str,
    cache_dir: Path,
) -> list[Sample]:
    """Ds = candidates the baseline really follows; the kept ids are cached per baseline."""
    from .trainer import samples_digest

    key = config_digest(
        {
            "baseline": baseline_digest,
            "candidates": samples_digest(candidates),
            "batch": cfg.eval_batch,
        }
    )
    path = cache_dir / "trained" / f"ds-filter-{key[:12]}.json"
    if path.is_file():
        kept_ids = set(json.loads(path.read_text(encoding="utf-8"))["kept"])
        return [s for s in candidates if s.id in kept_ids]
    kept, _ = filter_true_failures(model, tokenizer, candidates, batch_size=cfg.eval_batch)
    write_json_atomic(path, {"kept": [s.id for s in kept], "n_candidates": len(candidates)})
    return kept


def _run(
    cfg: PhaseRunConfig, digest: str, cache_dir: Path, progress: Callable[[str], None]
) -> PhaseRun:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.sft import SFTAdapter, SFTConfigSpec, SFTExample
    from trainers.tiny import TinyModelConfig, build_tiny_model

    from .trainer import CircuitBreakerTrainer, load_adapter, read_log, samples_digest

    torch.set_num_threads(1)
    cpu0 = time.process_time()
    wall: dict[str, float] = {}
    t = time.perf_counter()
    base_dir = build_tiny_model(TinyModelConfig(**cfg.tiny), out_dir=cache_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    world = generate_world(cfg.world)
    train = world[Split.TRAIN]
    ds_candidates = [s for s in train if s.label is Label.HARMFUL]
    dr = [s for s in train if s.label is Label.RETAIN]
    wall["data"] = time.perf_counter() - t

    t = time.perf_counter()
    problems: list[str] = []
    audited = [*world[Split.BASELINE_SFT], *train]
    for s in audited:
        problems.extend(p.describe() for p in audit_sample(tokenizer, s))
    wall["format_audit"] = time.perf_counter() - t
    progress(f"cb: audited {len(audited)} samples, {len(problems)} format problems")

    t = time.perf_counter()
    examples = []
    for s in world[Split.BASELINE_SFT]:
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        examples.append(SFTExample(enc.input_ids, enc.completion_mask))
    baseline = SFTAdapter(out_root=cache_dir / "trained", progress=progress).train(
        SFTConfigSpec(
            base_model_dir=str(base_dir),
            examples=tuple(examples),
            steps=cfg.baseline_steps,
            learning_rate=cfg.baseline_lr,
            batch_size=cfg.baseline_batch,
            seed=cfg.seed,
            tag="cb-baseline",
        )
    )
    baseline_dir = baseline.path / "model"
    wall["baseline_sft"] = time.perf_counter() - t

    t = time.perf_counter()
    base_model: Any = AutoModelForCausalLM.from_pretrained(baseline_dir)
    base_model.eval()
    ds = _filtered_ds(base_model, tokenizer, ds_candidates, cfg, baseline.digest, cache_dir)
    wall["ds_filter"] = time.perf_counter() - t
    progress(f"cb: Ds kept {len(ds)} of {len(ds_candidates)} candidates (true failures)")

    arms_cfg = {"adv_sft": replace(cfg.cb, rerouting=False), "cb": cfg.cb}
    artifacts = {}
    for name, arm_cfg in arms_cfg.items():
        t = time.perf_counter()
        trainer = CircuitBreakerTrainer(
            base_model_dir=baseline_dir,
            ds=ds,
            dr=dr,
            out_root=cache_dir / "trained",
            progress=progress,
        )
        artifacts[name] = trainer.train(arm_cfg)
        wall[f"train_{name}"] = time.perf_counter() - t

    eval_samples = world[Split.EVAL]
    results: dict[str, list[dict[str, Any]]] = {}
    t = time.perf_counter()
    results["baseline"] = [
        r.to_dict()
        for r in evaluate(base_model, tokenizer, eval_samples, batch_size=cfg.eval_batch)
    ]
    wall["eval_baseline"] = time.perf_counter() - t
    for name, art in artifacts.items():
        t = time.perf_counter()
        model = load_adapter(art, baseline_dir)
        results[name] = [
            r.to_dict() for r in evaluate(model, tokenizer, eval_samples, batch_size=cfg.eval_batch)
        ]
        wall[f"eval_{name}"] = time.perf_counter() - t
    wall["cpu_total"] = time.process_time() - cpu0  # CPU seconds: comparable under contention
    counts = {
        "ds": len(ds),
        "dr": len(dr),
        "adversarial_safe": sum(1 for s in dr if s.subtype is RetainKind.ADVERSARIAL_SAFE),
        "benign": sum(1 for s in dr if s.subtype is RetainKind.BENIGN),
        "eval_attacks": sum(1 for s in eval_samples if s.attack is not None),
        "eval_benign": sum(1 for s in eval_samples if s.attack is None),
    }
    return PhaseRun(
        config_digest=digest,
        counts=counts,
        format_problems=problems,
        n_audited=len(audited),
        ds_dropped=len(ds_candidates) - len(ds),
        ds_candidates=len(ds_candidates),
        model_digests={
            "baseline": baseline.digest,
            **{name: art.digest for name, art in artifacts.items()},
        },
        data_digest=samples_digest([*ds, *dr, *eval_samples]),
        train_logs={
            name: read_log(art.log_path) for name, art in artifacts.items() if art.log_path
        },
        results=results,
        wall_s={k: round(v, 2) for k, v in wall.items()},
    )
