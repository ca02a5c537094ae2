"""The circuit-breaker phase end to end on the embedded default (CPU, tiny model).

1. build the tiny base model (``trainers.tiny``) and draw the synthetic world;
2. audit the format of every training sample through the tokenizer's template;
3. SFT a *vulnerable baseline* (it learns tool calls and to follow injections);
4. filter Ds candidates to the baseline's true failures (report the dropped);
5. train two LoRA arms on the baseline with identical data and LoRA settings:
   ``adv_sft`` (retain + CE on adversarial-safe, no rerouting) and ``cb``
   (rerouting + retain + CE), each once per seed of ``arm_seeds``;
6. evaluate the baseline and every (arm, seed) run on the held-out eval split —
   once: the dev split, where knobs are chosen (``trainers.circuit_breaker.sweep``),
   is never evaluated here, and the eval split is never evaluated by the sweep.

Opt-in (``PhaseRunConfig.sources``, ``harness cb-data run``): external samples
files join the synthetic world.  Each source's ``train`` rows are split by a
stable hash of their id: one half trains the vulnerable baseline (harmful +
benign, as the synthetic ``baseline_sft`` split does), the other gives Ds
candidates and Dr; every adversarial-safe row goes to Dr (the baseline must not
learn to resist).  Its ``eval`` rows join the eval set.  Rows longer than the
model's positions are skipped and counted per source.  Without sources the
config digest, the data and every step are those of the embedded default.

Everything is cached under ``cache_dir`` by the project's one cache-key helper,
:func:`harness.cachekey.cache_key`, over the config *and the producing code*
(``PHASE_MODULES``: source digests of every module on the path; ``LIBRARIES``:
library versions), and the whole result is written as one JSON (raw outputs
included) so gates in separate pytest workers read the same run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from harness.cachekey import CacheKey, cache_key
from harness.errors import DataValidationError
from trainers.base import write_json_atomic

from .cachekey import LIBRARIES, PHASE_MODULES
from .config import CircuitBreakerConfig
from .data import (
    SYNTHETIC_SOURCE,
    Label,
    RetainKind,
    Sample,
    Split,
    WorldConfig,
    check_unique_ids,
    generate_world,
    load_jsonl,
)
from .eval import ItemResult, evaluate, filter_true_failures
from .format_audit import audit_sample, encode_completion

__all__ = [
    "ARMS",
    "GENERATION_BUDGET",
    "PHASE_KIND",
    "SYNTHETIC_SOURCE",
    "TRAINED_ARMS",
    "ExternalPartition",
    "ExternalSource",
    "PhaseRun",
    "PhaseRunConfig",
    "arm_configs",
    "evaluate_run",
    "external_half",
    "filtered_ds",
    "partition_external",
    "run_key",
    "run_phase",
    "train_baseline",
]

ARMS = ("baseline", "adv_sft", "cb")
#: the ``kind`` of the phase result's cache key (:func:`harness.cachekey.cache_key`)
PHASE_KIND = "circuit_breaker_phase"
#: the trained arms (each trained once per seed)
TRAINED_ARMS = ("adv_sft", "cb")


def run_key(arm: str, seed: int) -> str:
    """Key of one trained (arm, seed) run in ``PhaseRun.results`` / ``model_digests``."""
    return f"{arm}-seed{seed}"


#: New tokens :func:`~trainers.circuit_breaker.eval.generate` may add to an eval prompt
#: (its ``max_new_tokens`` default); an eval row must leave room for them.
GENERATION_BUDGET = 64


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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ExternalSource:
    """One external samples JSONL file (``harness cb-data asb|agentdojo``) and its content digest.

    The digest, not the path, keys the cached run: the same file moved elsewhere
    reuses the result, and a rewritten file cannot silently reuse a stale one.
    """

    path: str
    sha256: str

    @classmethod
    def from_path(cls, path: str | Path) -> ExternalSource:
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise DataValidationError(
                f"external source {p}: no such file; export one with "
                "`harness cb-data asb --out FILE` or `harness cb-data agentdojo --out FILE`"
            )
        return cls(path=str(p), sha256=_file_sha256(p))


@dataclass(frozen=True)
class PhaseRunConfig:
    """Every knob of the embedded-default run; its digest keys the cached result.

    ``sources`` (opt-in, empty by default) adds external samples files to the
    synthetic world.  When empty the field is left out of :meth:`to_dict`, so
    the default digest — and with it the main job's cached run — is unchanged.
    """

    world: WorldConfig = field(default_factory=WorldConfig)
    tiny: dict[str, Any] = field(default_factory=_default_tiny)
    baseline_steps: int = 250
    baseline_lr: float = 3e-3
    baseline_batch: int = 16
    cb: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    eval_batch: int = 50
    seed: int = 0
    #: seeds of the two trained arms (LoRA init and batch order); ≥ 3 so a gate about
    #: the recipe cannot pass on one lucky seed (docs/circuit_breaker.md, "Seeds")
    arm_seeds: tuple[int, ...] = (0, 1, 2)
    sources: tuple[ExternalSource, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cb"] = self.cb.to_dict()
        out["world"] = self.world.to_dict()
        out["arm_seeds"] = list(self.arm_seeds)
        if self.sources:
            out["sources"] = [{"path": s.path, "sha256": s.sha256} for s in self.sources]
        else:
            del out["sources"]  # the default digest predates external sources
        return out

    def cache_key(self) -> CacheKey:
        """What the cached result depends on: this config and the producing code.

        Through :func:`harness.cachekey.cache_key`, like every cache of the
        project: the source of ``PHASE_MODULES`` (read from disk, so an edit is
        a new key), the ``LIBRARIES`` versions, this config and the baseline seed.
        """
        payload = self.to_dict()
        if self.sources:  # content, not location, identifies a source
            payload["sources"] = [s.sha256 for s in self.sources]
        return cache_key(
            PHASE_KIND, modules=PHASE_MODULES, libraries=LIBRARIES, config=payload, seed=self.seed
        )

    def digest(self) -> str:
        """The phase result's key (``cb-phase-<first 12>.json``)."""
        return self.cache_key().key


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
    #: seeds of the trained arms; results hold ``run_key(arm, seed)`` for each
    arm_seeds: list[int] = field(default_factory=list)
    #: the cache key's code part (``{"sources": module source digests, "libraries": versions}``)
    code_key: dict[str, Any] = field(default_factory=dict)
    #: each trained run's W&B record (``trainers.tracking.RunTracker.record``), by run key
    training_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per ``Sample.source`` when external sources were given (empty otherwise): file,
    #: sha256, rows read, baseline-SFT rows, Ds candidates, kept, dropped, Dr, eval
    #: attacks/benign, and rows skipped as longer than the model's positions.
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def runs(self, arm: str) -> list[str]:
        """The result keys of every seed of a trained arm (``["baseline"]`` for the baseline)."""
        if arm == "baseline" or not self.arm_seeds:  # results written before seeds existed
            return [arm] if arm in self.results else []
        return [run_key(arm, s) for s in self.arm_seeds]

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
    refresh: bool = False,
) -> PhaseRun:
    """Run (or reuse) the whole phase; safe to call from several xdist workers at once.

    ``refresh`` (``harness run --no-cache``) recomputes the phase result and
    overwrites it; trained models are still reused when their own key (producing
    code, config, data) matches.  The key is noted for the evidence
    (:func:`harness.cachekey.note_cache_use`).
    """
    from harness.cachekey import note_cache_use, note_training_run

    cfg = config or PhaseRunConfig()
    key = cfg.cache_key()
    digest = key.key
    note_cache_use(key, mode="refresh" if refresh else "use")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    result_path = cache_dir / f"cb-phase-{digest[:12]}.json"
    with FileLock(str(result_path) + ".lock"):
        if result_path.is_file() and not refresh:
            run = PhaseRun.load(result_path)
        else:
            run = _run(cfg, key, cache_dir, progress)
            write_json_atomic(result_path, asdict(run))
    for name, record in run.training_runs.items():  # evidence: extra["training_runs"]
        note_training_run(f"circuit_breaker/{name}", record)
    return run


def arm_configs(cb: CircuitBreakerConfig, seed: int) -> dict[str, CircuitBreakerConfig]:
    """The two trained arms at one seed: identical but for the rerouting term."""
    return {
        "adv_sft": replace(cb, rerouting=False, seed=seed),
        "cb": replace(cb, seed=seed),
    }


def external_half(sample_id: str) -> Literal["baseline_sft", "cb"]:
    """Which half of an external source's ``train`` rows a row goes to, by a hash of its id.

    sha256 rather than ``hash()``: Python salts string hashes per process, and the
    split must be identical in every run, worker and machine.
    """
    first = hashlib.sha256(sample_id.encode("utf-8")).digest()[0]
    return "baseline_sft" if first % 2 == 0 else "cb"


@dataclass
class ExternalPartition:
    """External rows by their role in the run (see :func:`partition_external`)."""

    baseline_sft: list[Sample] = field(default_factory=list)
    cb_train: list[Sample] = field(default_factory=list)
    eval: list[Sample] = field(default_factory=list)


def partition_external(samples: Sequence[Sample]) -> ExternalPartition:
    """Give every external row its role, deterministically.

    * ``eval`` rows are held-out eval items;
    * ``train`` harmful and benign rows split by :func:`external_half`: one half
      trains the vulnerable baseline (so it learns to follow *this* source's
      injections, as the synthetic ``baseline_sft`` split teaches the world's),
      the other half gives Ds candidates and benign Dr;
    * ``train`` adversarial-safe rows all go to Dr: the synthetic baseline sees
      none either (they would teach it to resist), and Dr needs them most;
    * rows a source itself labels ``baseline_sft`` train the baseline.
    """
    out = ExternalPartition()
    for s in samples:
        if s.split is Split.EVAL:
            out.eval.append(s)
        elif s.split is Split.BASELINE_SFT:
            out.baseline_sft.append(s)
        elif s.subtype is RetainKind.ADVERSARIAL_SAFE or external_half(s.id) == "cb":
            out.cb_train.append(s)
        else:
            out.baseline_sft.append(s)
    return out


def _n_tokens(tokenizer: Any, s: Sample) -> int:
    """Positions a row needs: prompt + completion, and for eval rows prompt + generation."""
    enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
    need = len(enc.input_ids)
    if s.split is Split.EVAL:
        need = max(need, enc.prompt_len + GENERATION_BUDGET)
    return need


def _load_external(
    sources: Sequence[ExternalSource],
    tokenizer: Any,
    *,
    max_positions: int,
    progress: Callable[[str], None],
) -> tuple[ExternalPartition, dict[str, dict[str, Any]]]:
    """Read, verify, length-check and partition every external file; counts per source."""
    counts: dict[str, dict[str, Any]] = {}
    kept: list[Sample] = []
    for src in sources:
        path = Path(src.path)
        if not path.is_file():
            raise DataValidationError(
                f"external source {path}: no such file (sha256 {src.sha256[:12]}…); restore it "
                "or export it again with `harness cb-data asb|agentdojo --out FILE`"
            )
        actual = _file_sha256(path)
        if actual != src.sha256:
            raise DataValidationError(
                f"external source {path}: sha256 {actual[:12]}… but the config pinned "
                f"{src.sha256[:12]}…; the file changed after the config was made — build the "
                "config again (ExternalSource.from_path) so the cache key matches the content"
            )
        rows = load_jsonl(path)
        n_skipped = 0
        for s in rows:
            if s.source == SYNTHETIC_SOURCE:
                raise DataValidationError(
                    f"external source {path}: row '{s.id}' has source '{SYNTHETIC_SOURCE}', the "
                    "synthetic world's own name; per-source results would mix them — give "
                    "external rows their own source name"
                )
            c = counts.setdefault(
                s.source,
                {"files": [], "rows": 0, "skipped_overlong": 0, "skipped_overlong_by_split": {}},
            )
            if str(path) not in c["files"]:
                c["files"].append(str(path))
                c.setdefault("sha256", []).append(src.sha256)
            c["rows"] += 1
            if _n_tokens(tokenizer, s) > max_positions:
                c["skipped_overlong"] += 1
                by = c["skipped_overlong_by_split"]
                by[s.split.value] = by.get(s.split.value, 0) + 1
                n_skipped += 1
                continue
            kept.append(s)
        progress(
            f"cb: external {path.name}: {len(rows)} rows, {n_skipped} skipped as longer than "
            f"the model's {max_positions} positions"
        )
    return partition_external(kept), counts


def _source_counts(
    counts: dict[str, dict[str, Any]],
    *,
    baseline_rows: Sequence[Sample],
    candidates: Sequence[Sample],
    ds: Sequence[Sample],
    dr: Sequence[Sample],
    eval_samples: Sequence[Sample],
) -> dict[str, dict[str, Any]]:
    """Per-source row counts for the report, the synthetic world first."""

    def by_source(samples: Sequence[Sample]) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in samples:
            out[s.source] = out.get(s.source, 0) + 1
        return out

    parts = {
        "baseline_sft": by_source(baseline_rows),
        "ds_candidates": by_source(candidates),
        "ds_kept": by_source(ds),
        "dr": by_source(dr),
        "dr_adversarial_safe": by_source(
            [s for s in dr if s.subtype is RetainKind.ADVERSARIAL_SAFE]
        ),
        "dr_benign": by_source([s for s in dr if s.subtype is RetainKind.BENIGN]),
        "eval_attacks": by_source([s for s in eval_samples if s.attack is not None]),
        "eval_benign": by_source([s for s in eval_samples if s.attack is None]),
    }
    names = [SYNTHETIC_SOURCE, *(n for n in counts if n != SYNTHETIC_SOURCE)]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        row: dict[str, Any] = dict(counts.get(name, {}))
        for key, per in parts.items():
            row[key] = per.get(name, 0)
        row["ds_dropped"] = row["ds_candidates"] - row["ds_kept"]
        out[name] = row
    return out


def filtered_ds(
    model: Any,
    tokenizer: Any,
    candidates: list[Sample],
    cfg: PhaseRunConfig,
    baseline_digest: str,
    cache_dir: Path,
) -> list[Sample]:
    """Ds = candidates the baseline really follows; the kept ids are cached per baseline."""
    from .trainer import samples_digest

    key = cache_key(
        "circuit_breaker_ds_filter",
        modules=PHASE_MODULES,
        libraries=LIBRARIES,
        config={"baseline": baseline_digest, "batch": cfg.eval_batch},
        data=samples_digest(candidates),
    ).key
    path = cache_dir / "trained" / f"ds-filter-{key[:12]}.json"
    if path.is_file():
        kept_ids = set(json.loads(path.read_text(encoding="utf-8"))["kept"])
        return [s for s in candidates if s.id in kept_ids]
    kept, _ = filter_true_failures(model, tokenizer, candidates, batch_size=cfg.eval_batch)
    write_json_atomic(path, {"kept": [s.id for s in kept], "n_candidates": len(candidates)})
    return kept


def evaluate_run(
    load_model: Callable[[], Any],
    tokenizer: Any,
    items: Sequence[Sample],
    *,
    model_digest: str,
    batch_size: int,
    cache_dir: Path,
) -> list[dict[str, Any]]:
    """Every item's scored output for one model, cached by model digest, items and code.

    The cache lets the seven evaluations of a cold run be computed by separate
    processes (or resumed after an interruption) without changing what they are:
    the key is the model's weight digest, the items' digest, the batch size
    (left padding changes greedy outputs at float level) and the producing code.
    """
    from .trainer import samples_digest

    key = cache_key(
        "circuit_breaker_eval",
        modules=PHASE_MODULES,
        libraries=LIBRARIES,
        config={"model": model_digest, "batch": batch_size},
        data=samples_digest(items),
    ).key
    path = cache_dir / "evals" / f"eval-{key[:16]}.json"
    if path.is_file():
        return list(json.loads(path.read_text(encoding="utf-8"))["results"])
    rows = [r.to_dict() for r in evaluate(load_model(), tokenizer, items, batch_size=batch_size)]
    write_json_atomic(path, {"model": model_digest, "results": rows})
    return rows


def train_baseline(
    cfg: PhaseRunConfig,
    base_dir: Path,
    tokenizer: Any,
    rows: Sequence[Sample],
    cache_dir: Path,
    progress: Callable[[str], None],
) -> Any:
    """SFT the vulnerable baseline (cached by the SFT adapter's digest); its ``Artifact``."""
    from trainers.sft import SFTAdapter, SFTConfigSpec, SFTExample

    examples = []
    for s in rows:
        enc = encode_completion(tokenizer, s.prompt_messages, s.messages[-1], sample_id=s.id)
        examples.append(SFTExample(enc.input_ids, enc.completion_mask))
    return SFTAdapter(out_root=cache_dir / "trained", progress=progress).train(
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


def _run(
    cfg: PhaseRunConfig, key: CacheKey, cache_dir: Path, progress: Callable[[str], None]
) -> PhaseRun:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from trainers.tiny import TinyModelConfig, build_tiny_model

    from .trainer import CircuitBreakerTrainer, load_adapter, read_log, samples_digest

    torch.set_num_threads(1)
    cpu0 = time.process_time()
    wall: dict[str, float] = {}
    t = time.perf_counter()
    base_dir = build_tiny_model(TinyModelConfig(**cfg.tiny), out_dir=cache_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    world = generate_world(cfg.world)
    baseline_rows = list(world[Split.BASELINE_SFT])
    train = list(world[Split.TRAIN])
    eval_samples = list(world[Split.EVAL])
    external_counts: dict[str, dict[str, Any]] = {}
    if cfg.sources:
        max_positions = int(AutoConfig.from_pretrained(base_dir).max_position_embeddings)
        ext, external_counts = _load_external(
            cfg.sources, tokenizer, max_positions=max_positions, progress=progress
        )
        baseline_rows += ext.baseline_sft
        train += ext.cb_train
        eval_samples += ext.eval
        check_unique_ids(
            [*baseline_rows, *train, *eval_samples],
            where="the synthetic world and the external sources",
        )
    ds_candidates = [s for s in train if s.label is Label.HARMFUL]
    dr = [s for s in train if s.label is Label.RETAIN]
    wall["data"] = time.perf_counter() - t

    t = time.perf_counter()
    problems: list[str] = []
    audited = [*baseline_rows, *train]
    for s in audited:
        problems.extend(p.describe() for p in audit_sample(tokenizer, s))
    wall["format_audit"] = time.perf_counter() - t
    progress(f"cb: audited {len(audited)} samples, {len(problems)} format problems")

    t = time.perf_counter()
    baseline = train_baseline(cfg, base_dir, tokenizer, baseline_rows, cache_dir, progress)
    baseline_dir = baseline.path / "model"
    wall["baseline_sft"] = time.perf_counter() - t

    t = time.perf_counter()
    base_model: Any = AutoModelForCausalLM.from_pretrained(baseline_dir)
    base_model.eval()
    ds = filtered_ds(base_model, tokenizer, ds_candidates, cfg, baseline.digest, cache_dir)
    wall["ds_filter"] = time.perf_counter() - t
    progress(f"cb: Ds kept {len(ds)} of {len(ds_candidates)} candidates (true failures)")
    sources: dict[str, dict[str, Any]] = {}
    if cfg.sources:
        sources = _source_counts(
            external_counts,
            baseline_rows=baseline_rows,
            candidates=ds_candidates,
            ds=ds,
            dr=dr,
            eval_samples=eval_samples,
        )
        for name, c in sources.items():
            progress(
                f"cb: source {name}: baseline SFT {c['baseline_sft']}, Ds kept {c['ds_kept']} of "
                f"{c['ds_candidates']}, Dr {c['dr']}, eval {c['eval_attacks']} attacks + "
                f"{c['eval_benign']} benign, skipped overlong {c.get('skipped_overlong', 0)}"
            )

    artifacts = {}
    trainer = CircuitBreakerTrainer(
        base_model_dir=baseline_dir,
        ds=ds,
        dr=dr,
        out_root=cache_dir / "trained",
        progress=progress,
    )
    for seed in cfg.arm_seeds:
        for name, arm_cfg in arm_configs(cfg.cb, seed).items():
            t = time.perf_counter()
            artifacts[run_key(name, seed)] = trainer.train(arm_cfg)
            wall[f"train_{run_key(name, seed)}"] = time.perf_counter() - t

    results: dict[str, list[dict[str, Any]]] = {}
    t = time.perf_counter()
    progress(f"cb: evaluating baseline on {len(eval_samples)} eval items")
    results["baseline"] = evaluate_run(
        lambda: base_model,
        tokenizer,
        eval_samples,
        model_digest=baseline.digest,
        batch_size=cfg.eval_batch,
        cache_dir=cache_dir,
    )
    wall["eval_baseline"] = time.perf_counter() - t
    for name, art in artifacts.items():
        t = time.perf_counter()
        progress(f"cb: evaluating {name} on {len(eval_samples)} eval items")
        results[name] = evaluate_run(
            functools.partial(load_adapter, art, baseline_dir),
            tokenizer,
            eval_samples,
            model_digest=art.digest,
            batch_size=cfg.eval_batch,
            cache_dir=cache_dir,
        )
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
        config_digest=key.key,
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
        arm_seeds=list(cfg.arm_seeds),
        code_key={"sources": key.code, "libraries": key.libraries},
        training_runs={name: dict(art.metrics.get("wandb", {})) for name, art in artifacts.items()},
        train_logs={
            name: read_log(art.log_path) for name, art in artifacts.items() if art.log_path
        },
        results=results,
        wall_s={k: round(v, 2) for k, v in wall.items()},
        sources=sources,
    )
