"""The forge_reasoning run: both Quiet-STaR steps on the input model, plus the theater control.

Steps (CPU, deterministic given the config and the input model):

1. input model — forge's champion if ``<models_dir>/forge/champion`` exists, else a tiny
   Llama built and pretrained here on direct answers (``source`` in the record);
2. the 12 thought tokens are added (round-trip checked; a control skips the resize);
3. **main arm**: bake on program traces, then Quiet-STaR; **theater control**: the same
   steps on traces whose thought is the same ``control_filler_len`` filler pieces for
   every problem (a thought carrying no information);
4. both arms are scored on the held-out split (``cfg.eval_split``: ``dev`` for probes)
   under the five conditions; the baked main model (before Step 2) is scored for baking
   convergence.

With forge's champion as input, selection/dev/held-out items whose question the
champion was trained on (the digests in its directory, :func:`trainers.forge.champion.
question_set`) are dropped first; ``record["input"]["overlap"]`` says how many (a
champion without the file is used with a recorded warning).

The record (``run.json``) and the two arms' checkpoints (for per-session latency timing)
are cached under ``<cache>/forge_reasoning/<key>`` (:func:`harness.cachekey.cache_key`
over this package, the task module, library versions, config, input digest and seed);
a file lock makes concurrent workers wait for the first.
"""

from __future__ import annotations

import copy
import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from harness.atomic import atomic_write_json
from harness.cachekey import CacheKey, cache_key, digest_paths, note_cache_use, note_training_run
from harness.data.arithmetic import exclude_questions, make_splits
from trainers.base import directory_digest
from trainers.forge.champion import question_set
from trainers.quiet_star.base_model import InputModel, champion_dir, load_champion, tiny_model
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.stages import (
    Log,
    bake,
    baking_eval,
    evaluate_arm,
    greedy_thoughts,
    quiet_star,
)
from trainers.quiet_star.tokens import add_thought_tokens, roundtrip_failures
from trainers.quiet_star.traces import Trace, filler_trace, program_trace
from trainers.tracking import RunTracker

__all__ = [
    "ARMS",
    "PRODUCERS",
    "QuietStarRun",
    "arm_logger",
    "curve_fn",
    "drop_champion_questions",
    "load_arm",
    "run_quiet_star",
]

ARMS = ("main", "control")
#: The modules whose code reaches the cached record (latency timing and the CLI do not).
PRODUCERS = tuple(
    f"trainers.quiet_star.{m}"
    for m in (
        "ablation", "base_model", "config", "mixing", "pipeline", "reinforce", "sequences",
        "stages", "supervised", "thoughts", "tokens", "traces",
    )
)  # fmt: skip


@dataclass
class QuietStarRun:
    """The cached record of one run (plain JSON) and where its checkpoints are."""

    record: dict[str, Any]
    root: Path

    def arm_dir(self, arm: str) -> Path:
        return self.root / arm


def _clock() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), ru.ru_utime + ru.ru_stime


def _input_model(cfg: QuietStarConfig, models_dir: Path | None, train: list[Any]) -> InputModel:
    path = champion_dir(models_dir) if models_dir is not None else None
    if path is not None and (path / "config.json").is_file():
        return load_champion(path)
    return tiny_model(train, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, seed=cfg.seed)


def drop_champion_questions(
    start: InputModel, splits: dict[str, list[Any]], cfg: QuietStarConfig
) -> dict[str, Any]:
    """Drop non-train items whose question the champion trained on (in place); the record."""
    if start.source != "champion":
        return {"checked": False, "reason": "embedded model: trained here on the train split"}
    path = Path(start.info["path"])
    seen = question_set(path, start.info.get("champion") or {})
    if seen is None:
        return {
            "checked": False,
            "warning": "the forge champion has no training-question file (written before it "
            "existed): evaluation items may include questions it trained on; re-run forge",
        }
    dropped: dict[str, Any] = {}
    for name in ("selection", cfg.eval_split):
        before = splits[name]
        splits[name], dropped[name] = exclude_questions(before, seen)
        kept = {id(it) for it in splits[name]}
        dropped[f"{name}_seeds"] = [it.seed for it in before if id(it) not in kept]
    return {"checked": True, "dropped": dropped, "from": f"forge champion ({len(seen)} digests)"}


def _traces(items: list[Any], *, control: bool, filler_len: int, width: int = 0) -> list[Trace]:
    out = []
    for it in items:
        t = program_trace(it, width=width)
        if t is not None:
            out.append(filler_trace(it, length=filler_len) if control else t)
    return out


def curve_fn(
    model: Any, head: MixingHead, vocab: Vocab, items: list[Any], cfg: QuietStarConfig
) -> Callable[[int], dict[str, float]]:
    """The Step 2 accuracy curve: on ``items`` (selection split), exact match with the
    greedy own thought and with ``w = 0``, and the mean mixing weight."""
    from trainers.quiet_star.ablation import score_conditions

    def at(_step: int) -> dict[str, float]:
        prompts = [vocab.prompt(it) for it in items]
        answers = [vocab.answer(it.answer) for it in items]
        own = greedy_thoughts(model, vocab, prompts, max_len=cfg.max_thought)
        sc = score_conditions(model, head, prompts, answers, {"own": own}, vocab)
        n = len(items)
        return {
            "selection_accuracy_thought": sum(r["exact"] for r in sc["own"]) / n,
            "selection_accuracy_base": sum(r["exact"] for r in sc["base"]) / n,
            "selection_mixing_weight": sum(r["w"] for r in sc["own"]) / n,
        }

    return at


def _arm(
    arm: str,
    start: InputModel,
    splits: dict[str, list[Any]],
    cfg: QuietStarConfig,
    tracker: RunTracker,
    out_dir: Path,
) -> dict[str, Any]:
    """Bake, Quiet-STaR and evaluate one arm on a copy of the tokenised input model."""
    model, tok = copy.deepcopy(start.model), copy.deepcopy(start.tokenizer)
    vocab = Vocab.of(tok)

    curve_points: list[dict[str, float]] = []
    log = arm_logger(arm, tracker, curve_points)
    control = arm == "control"
    train = _traces(
        splits["train"], control=control, filler_len=cfg.control_filler_len, width=cfg.trace_width
    )
    held = _traces(splits[cfg.eval_split], control=False, filler_len=0, width=cfg.trace_width)
    t0 = _clock()
    steps = cfg.control_bake_steps if control else cfg.bake_steps
    bake_loss = bake(model, vocab, train, cfg, log, steps=steps)
    convergence = baking_eval(model, vocab, held, cfg)
    t1 = _clock()
    head = MixingHead(model.config.hidden_size)
    curve = curve_fn(model, head, vocab, splits["selection"][: cfg.curve_items], cfg)
    stats = quiet_star(model, head, vocab, splits["train"], cfg, log, curve)
    t2 = _clock()
    evaluation = evaluate_arm(model, head, vocab, splits[cfg.eval_split], cfg)
    t3 = _clock()
    from harness.backends.hf import quiet_progress

    with quiet_progress():
        model.save_pretrained(out_dir)
        tok.save_pretrained(out_dir)
    torch.save(head.state_dict(), out_dir / "mixing_head.pt")
    return {
        "bake_loss": bake_loss[-20:],
        "bake_loss_first": bake_loss[:5],
        "baking": convergence,
        "rl": [vars(s) for s in stats],
        "rl_curve": curve_points,
        "evaluation": evaluation,
        "seconds": {
            "bake_wall": t1[0] - t0[0],
            "bake_cpu": t1[1] - t0[1],
            "rl_wall": t2[0] - t1[0],
            "rl_cpu": t2[1] - t1[1],
            "eval_wall": t3[0] - t2[0],
            "eval_cpu": t3[1] - t2[1],
        },
        "model_digest": "sha256:" + directory_digest(out_dir),
    }


def arm_logger(arm: str, tracker: RunTracker, curve_points: list[dict[str, float]]) -> Log:
    """The stages' ``log``: W&B rows ``<arm>/<stage>/<metric>`` (with ``<arm>/<stage>/step``)
    on one increasing W&B step; ``rl_eval`` points are also kept in ``curve_points`` for
    the record and the report's accuracy plot."""

    def log(stage: str, step: int, metrics: dict[str, float]) -> None:
        if stage == "rl_eval":
            curve_points.append({"step": float(step), **metrics})
        row = {f"{arm}/{stage}/{k}": v for k, v in metrics.items()}
        tracker.log(_next_step(tracker), {**row, f"{arm}/{stage}/step": float(step)})

    return log


_STEPS: dict[int, int] = {}


def _next_step(tracker: RunTracker) -> int:
    """One increasing W&B step across all stages and arms (W&B drops decreasing steps)."""
    n = _STEPS.get(id(tracker), 0)
    _STEPS[id(tracker)] = n + 1
    return n


def _key(cfg: QuietStarConfig, models_dir: Path | None) -> tuple[CacheKey, str | None]:
    path = champion_dir(models_dir) if models_dir is not None else None
    data = digest_paths([path]) if path is not None and (path / "config.json").is_file() else None
    key = cache_key(
        "forge_reasoning",
        modules=[
            *PRODUCERS,
            "harness.data.arithmetic",
            "trainers.forge.champion",
            "trainers.tracking",
        ],
        libraries=["torch", "transformers", "tokenizers"],
        config=cfg,
        data=data,
        seed=cfg.seed,
    )
    return key, data


def run_quiet_star(
    cfg: QuietStarConfig,
    *,
    cache_dir: Path,
    models_dir: Path | None,
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> QuietStarRun:
    """The cached run (module doc); computes it once per key (``refresh``: recompute)."""
    key, _ = _key(cfg, models_dir)
    root = cache_dir / key.short
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        record_file = root / "run.json"
        if record_file.is_file() and not refresh:
            record = json.loads(record_file.read_text(encoding="utf-8"))
            note_cache_use(key, mode="use", label="forge_reasoning")
            note_training_run("forge_reasoning", record["tracking"])
            return QuietStarRun(record, root)
        record = _compute(cfg, models_dir, root, progress)
        record["cache"] = key.record()
        atomic_write_json(record_file, record)
        note_cache_use(key, mode="refresh", label="forge_reasoning")
        note_training_run("forge_reasoning", record["tracking"])
        return QuietStarRun(record, root)


def _compute(
    cfg: QuietStarConfig, models_dir: Path | None, root: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    torch.set_num_threads(cfg.threads)
    splits: dict[str, list[Any]] = dict(make_splits(cfg.splits(), difficulties=cfg.levels))  # type: ignore[arg-type]
    start = _input_model(cfg, models_dir, splits["train"])
    overlap = drop_champion_questions(start, splits, cfg)
    t0 = _clock()
    with RunTracker(name="forge-reasoning", config=cfg.to_dict(), group="forge_reasoning") as tr:
        if start.source == "embedded":
            progress("pretraining the embedded tiny model")
            pre_loss = _pretrain(start, splits, cfg, tr)
        else:
            pre_loss = []
        reference = copy.deepcopy(start.model)
        tokenizer_before = copy.deepcopy(start.tokenizer)
        added = add_thought_tokens(start.model, start.tokenizer)
        failures = roundtrip_failures(start.model, start.tokenizer, added, reference=reference)
        control_failures = _roundtrip_control(reference, tokenizer_before)
        t_pre = _clock()
        arms = {}
        for arm in ARMS:
            progress(f"arm {arm}: baking, Quiet-STaR, evaluation")
            (root / arm).mkdir(parents=True, exist_ok=True)
            arms[arm] = _arm(arm, start, splits, cfg, tr, root / arm)
        tr.summary(_summary(arms))
    t1 = _clock()
    return {
        "config": cfg.to_dict(),
        "input": {"source": start.source, **start.info, "overlap": overlap},
        "pretrain_loss_last": pre_loss[-20:],
        "tokens": {**added.to_dict(), "roundtrip_failures": failures},
        "tokens_control": {"roundtrip_failures": control_failures, "resize": False},
        "arms": arms,
        "seconds": {
            "total_wall": t1[0] - t0[0],
            "total_cpu": t1[1] - t0[1],
            "pretrain_wall": t_pre[0] - t0[0],
            "pretrain_cpu": t_pre[1] - t0[1],
        },
        "tracking": tr.record(),
    }


def _pretrain(
    start: InputModel, splits: dict[str, list[Any]], cfg: QuietStarConfig, tr: RunTracker
) -> list[float]:
    """Direct-answer pretraining before the thought tokens exist (ids are the same after)."""
    from trainers.quiet_star.sequences import Layout
    from trainers.quiet_star.supervised import train_supervised
    from trainers.quiet_star.tokens import pieces

    conv = start.tokenizer.convert_tokens_to_ids
    eos, sep, pad = conv("<eos>"), conv("A:"), conv("<pad>")
    rows = [
        ([*conv(pieces(it.question)), sep], [*conv(pieces(it.answer)), eos])
        for it in splits["train"]
    ]

    def sample(gen: torch.Generator, n: int) -> list[Layout]:
        idx = torch.randint(len(rows), (n,), generator=gen).tolist()
        return [Layout.base(*rows[i]) for i in idx]

    return train_supervised(
        start.model, sample, steps=cfg.pretrain_steps, batch_size=cfg.batch,
        lr=cfg.pretrain_lr, pad=pad, seed=cfg.seed,
        on_step=lambda s, loss, gn: tr.log(
            _next_step(tr), {"pretrain/loss": loss, "pretrain/grad_norm": gn, "pretrain/step": s}
        ),
    )  # fmt: skip


def _roundtrip_control(reference: Any, tokenizer_before: Any) -> list[str]:
    """The round-trip gate's control: tokens added but the embeddings never resized."""
    model = copy.deepcopy(reference)
    added = add_thought_tokens(model, tokenizer_before, resize=False)
    return roundtrip_failures(model, tokenizer_before, added, reference=reference)


def _summary(arms: dict[str, dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for arm, rec in arms.items():
        sc = rec["evaluation"]["scores"]
        for cond, rows in sc.items():
            out[f"{arm}/held_out/{cond}/accuracy"] = sum(r["exact"] for r in rows) / len(rows)
            out[f"{arm}/held_out/{cond}/p_bar"] = sum(r["p_bar"] for r in rows) / len(rows)
    return out


def load_arm(run: QuietStarRun, arm: str) -> tuple[Any, Any, MixingHead]:
    """(model, tokenizer, mixing head) of a cached arm, for latency timing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf import quiet_progress

    path = run.arm_dir(arm)
    with quiet_progress():
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        tok = AutoTokenizer.from_pretrained(path)
    head = MixingHead(model.config.hidden_size)
    head.load_state_dict(torch.load(path / "mixing_head.pt", weights_only=True))
    head.eval()
    return model, tok, head
