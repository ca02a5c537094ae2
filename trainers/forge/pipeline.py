"""The forge phase's run: Cognate → EvoMerge → champion, cached by ``harness.cachekey.cache_key``.

Steps (CPU, deterministic given the config):

1. data — the generated arithmetic task (or the user's JSONL), split train /
   selection / held_out; the vocabulary is fitted on ``train`` only;
2. Cognate — stem + three specialists (:mod:`trainers.forge.cognate`);
3. EvoMerge — :func:`trainers.forge.evolution.evolve` on the specialists, base = the
   stem, **fitness = exact match on the selection split**; wall and CPU time measured
   around the call;
4. judging — every model (untrained init, stem, specialists, champion) answers the
   **held-out** split once by greedy decoding; hidden states at the answer position
   are kept for linear CKA;
5. controls — a "merge" that returns the best parent (the champion is the best
   parent), and a degenerate merge (every child's weights scaled ×1000: detection
   must flag every one and fall back), both through the same evolution code.

The record (:class:`ForgeRun`) is JSON written atomically under
``<cache>/forge/forge-<key>.json`` with the checkpoints beside it; the champion is
then published to the contract path (:mod:`trainers.forge.champion`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from harness.atomic import atomic_dir, atomic_write_json
from harness.cachekey import CacheKey, cache_key, note_cache_use, note_training_run
from harness.data.arithmetic import ArithmeticItem, load_jsonl, make_splits, split_items
from trainers.forge.cognate import CognateModels, state_dict_of, train_cognate
from trainers.forge.config import ForgeConfig
from trainers.forge.digitlm import (
    DigitVocab,
    answer_logits_features,
    exact_match,
    greedy_answers,
)
from trainers.forge.evolution import EvoConfig, EvoResult, evolve, task_diversity
from trainers.merge.combos import compose
from trainers.merge.tensor_ops import StateDict

__all__ = ["ForgeRun", "forge_cache_key", "load_splits", "run_forge"]

_MODULES = (
    "trainers.forge",
    "trainers.merge",
    "harness.data.arithmetic",
)
_LIBS = ("torch", "transformers", "tokenizers")
#: the manifest's ``task``: a task spec other phases load (``"arithmetic"`` = the generated
#: task, levels 1–4; user data: the absolute JSONL path) — compression's ``load_task`` reads it
_TASK = "arithmetic"
_CREATOR = "forge phase (trainers.forge.pipeline)"


@dataclass
class ForgeRun:
    """What the gates read (JSON round-trippable)."""

    cache_key: dict[str, Any]
    task: str
    config: dict[str, Any]
    item_ids: list[str]
    levels: list[int]
    targets: list[str]
    #: subject → greedy answer per held-out item (None = malformed output)
    answers: dict[str, list[str | None]]
    #: subject → selection-split accuracy (what evolution saw)
    selection_accuracy: dict[str, float]
    history: list[dict[str, Any]]
    lineage: dict[str, list[Any]]
    champion_id: str
    combo_counts: dict[str, int]
    accepted_combos: dict[str, int]
    final_population_diversity: float
    final_population: list[dict[str, Any]]
    evolution_seconds: dict[str, float]
    fitness_calls: int
    controls: dict[str, dict[str, Any]]
    paths: dict[str, str]
    seconds: dict[str, float]
    tracking: dict[str, Any] = field(default_factory=dict)
    champion_path: str = ""

    @classmethod
    def load(cls, path: Path) -> ForgeRun:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))

    def correct(self, subject: str) -> list[bool]:
        """Per held-out item: the subject's greedy answer equals the target."""
        return [a == t for a, t in zip(self.answers[subject], self.targets, strict=True)]

    def accuracy(self, subject: str) -> float:
        ok = self.correct(subject)
        return sum(ok) / len(ok)


def load_splits(cfg: ForgeConfig) -> dict[str, list[ArithmeticItem]]:
    """Generated splits (disjoint seed ranges) or the user's JSONL split 80/10/10 by seed."""
    if cfg.data_path is None:
        sizes = {"train": cfg.n_train, "selection": cfg.n_selection, "held_out": cfg.n_held_out}
        made = make_splits(sizes)  # type: ignore[arg-type, unused-ignore]
        return {str(name): items for name, items in made.items()}
    items = [it for it in load_jsonl(cfg.data_path) if it.answer.isdigit()]
    parts = split_items(items, fractions=(0.8, 0.1, 0.1), seed=cfg.seed)
    return {str(name): rows for name, rows in parts.items()}


def _task(cfg: ForgeConfig) -> str:
    return _TASK if cfg.data_path is None else str(Path(cfg.data_path).resolve())


def _data_digest(splits: Mapping[str, Sequence[ArithmeticItem]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in sorted(splits):
        for it in splits[name]:
            h.update(f"{name}\0{it.question}\0{it.answer}\n".encode())
    return "sha256:" + h.hexdigest()


def forge_cache_key(cfg: ForgeConfig, splits: Mapping[str, Sequence[ArithmeticItem]]) -> CacheKey:
    """Code of the producing modules, library versions, config, data digest and seed."""
    return cache_key(
        "forge", modules=_MODULES, libraries=_LIBS, config=cfg.model_dump(mode="json"),
        data=_data_digest(splits), seed=cfg.seed,
    )  # fmt: skip


def _load_model(sd: StateDict, template: torch.nn.Module) -> torch.nn.Module:
    import copy

    m = copy.deepcopy(template)
    m.load_state_dict(sd)
    m.eval()
    return m


class _Fitness:
    """Selection-split exact match of a state dict (the only data evolution sees)."""

    def __init__(
        self, template: torch.nn.Module, vocab: DigitVocab, items: Sequence[Any], ctx: int
    ):
        self.template, self.vocab, self.items, self.ctx = template, vocab, items, ctx
        self.model = _load_model(state_dict_of(template), template)

    def __call__(self, sd: StateDict) -> float:
        self.model.load_state_dict(sd)
        ok = exact_match(self.model, self.vocab, self.items, max_len=self.ctx)
        return sum(ok) / len(ok)

    def probe(self, sd: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next-token logits at the answer position of 16 selection items (degeneracy probe)."""
        self.model.load_state_dict(sd)
        return answer_logits_features(self.model, self.vocab, self.items[:16], max_len=self.ctx)


def _degenerate_merge(
    parents: Sequence[Mapping[str, torch.Tensor]], recipe: Any, *, base: Any, registry: Any
) -> StateDict:
    """Control: a real combo merge whose every weight matrix is then scaled ×1000."""
    sd = compose(parents, recipe, base=base, registry=registry)
    return {k: v * 1000.0 if v.ndim >= 2 else v for k, v in sd.items()}


def _best_parent_merge(
    parents: Sequence[Mapping[str, torch.Tensor]], recipe: Any, *, base: Any, registry: Any
) -> StateDict:
    """Control: "merging" that returns a copy of the first parent (an elite, else a seed)."""
    return {k: v.clone() for k, v in parents[0].items()}


def _evolve(
    cfg: ForgeConfig,
    seeds: list[StateDict],
    base: StateDict,
    fitness: _Fitness,
    *,
    generations: int,
    merge: Callable[..., StateDict] = compose,
) -> tuple[EvoResult, dict[str, float]]:
    ev = cfg.evolution
    econf = EvoConfig(
        generations=generations, population=ev.population, elite=ev.elite,
        diversity_floor=ev.diversity_floor, seed=ev.seed,
    )  # fmt: skip
    wall0, cpu0 = time.perf_counter(), time.process_time()
    res = evolve(seeds, base=base, fitness=fitness, config=econf, probe=fitness.probe, merge=merge)
    secs = {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}
    return res, secs


def _judge(
    models: Mapping[str, torch.nn.Module],
    vocab: DigitVocab,
    items: Sequence[ArithmeticItem],
    ctx: int,
) -> tuple[dict[str, list[str | None]], dict[str, torch.Tensor]]:
    """Greedy answers and answer-position hidden states of every subject on held-out items."""
    answers, feats = {}, {}
    for name, m in models.items():
        answers[name] = greedy_answers(m, vocab, items, max_len=ctx)
        feats[name] = answer_logits_features(m, vocab, items, max_len=ctx)
    return answers, feats


def _save_features(feats: Mapping[str, torch.Tensor], work: Path) -> str:
    """Answer-position hidden states per subject (``n × hidden``), for the evaluator's CKA."""
    import io

    import numpy as np

    from harness.atomic import atomic_write_bytes

    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: v.double().numpy() for k, v in feats.items()}
    np.savez(buf, **arrays)
    return str(atomic_write_bytes(work / "features.npz", buf.getvalue()))


def _history_rows(res: EvoResult) -> list[dict[str, Any]]:
    return [asdict(h) for h in res.history]


def _accepted(res: EvoResult) -> dict[str, int]:
    """Combo name → merges that used it and passed degenerate detection (from the lineage)."""
    out: dict[str, int] = {}
    for _parents, label in res.lineage.values():
        if label != "seed" and not label.startswith("fallback:"):
            out[label] = out.get(label, 0) + 1
    return out


def _control_record(res: EvoResult, secs: Mapping[str, float]) -> dict[str, Any]:
    fallbacks = sum(1 for _p, label in res.lineage.values() if label.startswith("fallback:"))
    children = sum(1 for _p, label in res.lineage.values() if label != "seed")
    return {
        "champion_id": res.champion.id,
        "champion_lineage": res.lineage.get(res.champion.id),
        "fallbacks": fallbacks,
        "children": children,
        "accepted_combos": _accepted(res),
        "history": _history_rows(res),
        "seconds": dict(secs),
    }


def _train_logged(
    cfg: ForgeConfig, vocab: DigitVocab, train: Sequence[ArithmeticItem], key: CacheKey, wdir: Path
) -> tuple[CognateModels, dict[str, Any]]:
    """Cognate training with every loss logged to an offline W&B run."""
    from trainers.tracking import RunTracker

    order = ["stem", *(s.name for s in cfg.specialists)]
    offset = {n: i * max(cfg.stem_steps, cfg.specialist_steps) for i, n in enumerate(order)}
    with RunTracker(
        name=f"forge-cognate-{key.short[:8]}", config=cfg.model_dump(mode="json"),
        group="forge", directory=wdir,
    ) as tracker:  # fmt: skip

        def log(name: str, step: int, loss: float) -> None:
            if step % 10 == 0:
                tracker.log(offset[name] + step, {f"loss/{name}": loss})

        models = train_cognate(cfg, vocab, train, log=log)
        tracker.summary({f"seconds/{k}": v for k, v in models.seconds.items()})
    return models, tracker.record()


def _log_evolution(res: EvoResult, key: CacheKey, cfg: ForgeConfig, wdir: Path) -> dict[str, Any]:
    from trainers.tracking import RunTracker

    with RunTracker(
        name=f"forge-evomerge-{key.short[:8]}", config=cfg.evolution.model_dump(mode="json"),
        group="forge", directory=wdir,
    ) as tracker:  # fmt: skip
        for h in res.history:
            tracker.log(h.generation, {
                "fitness/best": h.best, "fitness/mean": h.mean, "diversity": h.diversity,
                "fallbacks": h.fallbacks, "injections": h.injections,
            })  # fmt: skip
        tracker.summary({"combos": res.registry.as_dict(), "fitness_calls": res.fitness_calls})
    return tracker.record()


def _run(
    cfg: ForgeConfig,
    splits: Mapping[str, Sequence[ArithmeticItem]],
    key: CacheKey,
    work: Path,
    progress: Callable[[str], None],
) -> ForgeRun:
    from harness.settings import get_settings

    torch.set_num_threads(cfg.threads)
    t_all = time.perf_counter()
    wdir = get_settings().wandb_dir
    vocab = DigitVocab.fit(it.question for it in splits["train"])
    progress(f"forge: training stem + {len(cfg.specialists)} specialists")
    cog, track_cog = _train_logged(cfg, vocab, splits["train"], key, wdir)
    names = [s.name for s in cfg.specialists]
    template = cog.stem
    fit = _Fitness(template, vocab, splits["selection"], cfg.context)
    seeds = [state_dict_of(cog.specialists[n]) for n in names]
    base = state_dict_of(cog.stem)
    progress(f"forge: evolving {cfg.evolution.generations} generations")
    res, evo_secs = _evolve(cfg, seeds, base, fit, generations=cfg.evolution.generations)
    track_evo = _log_evolution(res, key, cfg, wdir)
    progress("forge: controls (best-parent merge, degenerate merge)")
    ctl_bp, secs_bp = _evolve(cfg, seeds, base, fit, generations=2, merge=_best_parent_merge)
    ctl_dg, secs_dg = _evolve(cfg, seeds, base, fit, generations=2, merge=_degenerate_merge)
    models: dict[str, torch.nn.Module] = {
        "init": cog.init, "stem": cog.stem, **cog.specialists,
        "champion": _load_model(res.champion.state_dict, template),
        "control_best_parent": _load_model(ctl_bp.champion.state_dict, template),
        "control_degenerate": _load_model(ctl_dg.champion.state_dict, template),
    }  # fmt: skip
    progress("forge: judging every subject on the held-out split")
    held = splits["held_out"]
    answers, feats = _judge(models, vocab, held, cfg.context)
    paths = {**_save_models(models, vocab, work), "features": _save_features(feats, work)}
    return ForgeRun(
        cache_key=key.record(), task=_task(cfg),
        config=cfg.model_dump(mode="json"),
        item_ids=[f"held_out-{i:04d}" for i in range(len(held))],
        levels=[it.difficulty for it in held], targets=[it.answer for it in held],
        answers=answers,
        selection_accuracy={n: fit(state_dict_of(m)) for n, m in models.items()},
        history=_history_rows(res),
        lineage={k: [list(p), lab] for k, (p, lab) in res.lineage.items()},
        champion_id=res.champion.id, combo_counts=res.registry.as_dict(),
        accepted_combos=_accepted(res),
        final_population_diversity=task_diversity(
            [p.state_dict for p in res.final_population], base=base
        ),
        final_population=[{"id": p.id, "fitness": p.fitness} for p in res.final_population],
        evolution_seconds=evo_secs, fitness_calls=res.fitness_calls,
        controls={
            "best_parent_merge": _control_record(ctl_bp, secs_bp),
            "degenerate_merge": _control_record(ctl_dg, secs_dg),
        },
        paths=paths,
        seconds={**cog.seconds, "total": time.perf_counter() - t_all},
        tracking={"cognate": track_cog, "evomerge": track_evo},
    )  # fmt: skip


def _save_models(
    models: Mapping[str, torch.nn.Module], vocab: DigitVocab, work: Path
) -> dict[str, str]:
    out = {}
    for name, m in models.items():
        d = work / name
        with atomic_dir(d) as tmp:
            m.save_pretrained(tmp)  # type: ignore[operator]
            (tmp / "forge_vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
        out[name] = str(d)
    return out


def _publish_champion(
    run: ForgeRun, models_dir: Path | None, splits: Mapping[str, Sequence[ArithmeticItem]]
) -> str:
    from transformers import LlamaForCausalLM

    from trainers.forge.champion import ChampionManifest, champion_dir, write_champion

    parents = [s["name"] for s in run.config["specialists"]]
    best = max(run.accuracy(p) for p in parents)
    manifest = ChampionManifest(
        cache_key=run.cache_key["key"], task=run.task,
        held_out_accuracy=run.accuracy("champion"), created_by=_CREATOR,
        selection_accuracy=run.selection_accuracy["champion"],
        best_parent_held_out_accuracy=best, held_out_items=len(run.targets),
        source_checkpoint=run.paths["champion"],
    )  # fmt: skip
    d = champion_dir(models_dir)
    vocab = DigitVocab(
        tuple(json.loads((Path(run.paths["champion"]) / "forge_vocab.json").read_text())["tokens"])
    )
    model = LlamaForCausalLM.from_pretrained(run.paths["champion"])
    # what its weights were fitted on; selection (searched on, never trained on) is not
    # included: compression's dev split lies in that range (docs/compression.md)
    seen = [it.question for it in splits["train"]]
    write_champion(model, vocab, manifest, directory=d, train_questions=seen)
    return str(d)


def run_forge(
    cfg: ForgeConfig,
    *,
    cache_dir: Path,
    models_dir: Path | None = None,
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> ForgeRun:
    """Reuse ``<cache_dir>/forge-<key>.json`` or run (module doc); publish the champion."""
    splits = load_splits(cfg)
    key = forge_cache_key(cfg, splits)
    cache_dir.mkdir(parents=True, exist_ok=True)
    record = cache_dir / f"forge-{key.short}.json"
    with FileLock(str(record) + ".lock"):
        if record.is_file() and not refresh:
            run = ForgeRun.load(record)
            note_cache_use(key, mode="use", label="forge")
        else:
            run = _run(cfg, splits, key, cache_dir / f"forge-{key.short}", progress)
            atomic_write_json(record, asdict(run))
            note_cache_use(key, mode="refresh" if refresh else "use", label="forge")
        for label, rec in run.tracking.items():
            note_training_run(f"forge-{label}", rec)
        from trainers.forge.champion import champion_dir, read_manifest

        d = champion_dir(models_dir)
        current = d.is_dir() and (d.parent / "champion.json").is_file()
        stale = not current or read_manifest(d).cache_key != run.cache_key["key"]
        if stale or read_manifest(d).train_questions is None:  # older champions: add the set
            run.champion_path = _publish_champion(run, models_dir, splits)
        else:
            run.champion_path = str(d)
    return run
