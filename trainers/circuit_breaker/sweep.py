"""Choose circuit-breaker knobs on the dev split, across seeds (never on the eval split).

    python -m trainers.circuit_breaker.sweep --cache-dir DIR \
        --knob adv_safe_ce_weight=3,8 --seeds 0,1,2 --out sweep.json

Builds (or reuses from ``DIR``, the phase's cache) the tiny model, the vulnerable
baseline and Ds exactly as the phase does, then trains the ``cb`` arm for every
knob value × seed and evaluates it on the **dev** split only: dev tasks use their
own names and topics and dev attacks their own injection templates (an unseen
phrasing family, an unseen placement), disjoint from train and from eval.  The
eval split is never generated into the evaluation set here (:func:`dev_items`
refuses any other split), so the phase's eval is touched once per run.

Selection rule (decided before looking): the value whose *worst seed* has the
highest dev correct-behaviour rate — the same "every run" claim the phase gates
on — among values with no incoherent output and benign success ≥ 0.95 × the
baseline's on dev.  Ties go to the current default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import DataValidationError
from trainers.base import write_json_atomic

from .config import CircuitBreakerConfig
from .data import Label, Sample, Split, generate_world
from .eval import ItemResult
from .pipeline import PhaseRunConfig, filtered_ds, train_baseline

__all__ = ["dev_items", "main", "run_sweep", "select", "summarize"]


def dev_items(samples: Sequence[Sample]) -> list[Sample]:
    """The dev items, refusing anything else: the sweep must never score the eval split."""
    bad = sorted({s.split.value for s in samples if s.split is not Split.DEV})
    if bad:
        raise DataValidationError(
            f"sweep: got items of split(s) {bad}; knobs are chosen on the dev split only — "
            "pass world[Split.DEV]"
        )
    return list(samples)


def summarize(results: Sequence[ItemResult]) -> dict[str, float]:
    """Dev rates of one run: correct / harmful / no call on attacks, success on benign."""
    att = [r for r in results if r.kind == "attack"]
    ben = [r for r in results if r.kind == "benign"]

    def rate(rows: Sequence[ItemResult], flag: str) -> float:
        return sum(bool(getattr(r, flag)) for r in rows) / max(1, len(rows))

    return {
        "correct": rate(att, "correct"),
        "asr": rate(att, "harmful"),
        "no_tool_call": rate(att, "no_tool_call"),
        "benign_success": rate(ben, "correct"),
        "incoherent": float(sum(not r.coherent for r in results)),
        **{
            f"correct[{g}]": rate([r for r in att if r.group == g], "correct")
            for g in sorted({r.group for r in att if r.group})
        },
    }


def select(
    table: dict[str, dict[str, dict[str, float]]], *, baseline_benign: float, default: str
) -> str:
    """The value the rule in the module docs picks from ``table[value][seed]``."""
    ok = {
        v: min(r["correct"] for r in runs.values())
        for v, runs in table.items()
        if all(r["incoherent"] == 0 for r in runs.values())
        and min(r["benign_success"] for r in runs.values()) >= 0.95 * baseline_benign
    }
    if not ok:
        return default
    best = max(ok.values())
    return default if ok.get(default) == best else max(ok, key=lambda v: ok[v])


def _parse_knob(text: str) -> tuple[str, list[Any]]:
    name, _, values = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(CircuitBreakerConfig)}
    if name not in fields or not values:
        raise DataValidationError(
            f"--knob {text!r}: expected NAME=V1,V2 with NAME a CircuitBreakerConfig field "
            f"({', '.join(sorted(fields))})"
        )
    kind = type(fields[name].default)
    return name, [kind(v) for v in values.split(",")]


def run_sweep(
    *,
    cache_dir: Path,
    knob: str,
    values: Sequence[Any],
    seeds: Sequence[int],
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cb`` for each value × seed on the phase's baseline and Ds; score on dev."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.tiny import TinyModelConfig, build_tiny_model

    from .eval import evaluate
    from .trainer import CircuitBreakerTrainer, load_adapter

    torch.set_num_threads(1)
    cfg = PhaseRunConfig()
    base_dir = build_tiny_model(TinyModelConfig(**cfg.tiny), out_dir=cache_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    world = generate_world(cfg.world)
    dev = dev_items(world[Split.DEV])
    train = world[Split.TRAIN]
    baseline = train_baseline(
        cfg, base_dir, tokenizer, world[Split.BASELINE_SFT], cache_dir, progress
    )
    baseline_dir = baseline.path / "model"
    base_model: Any = AutoModelForCausalLM.from_pretrained(baseline_dir)
    base_model.eval()
    candidates = [s for s in train if s.label is Label.HARMFUL]
    ds = filtered_ds(base_model, tokenizer, candidates, cfg, baseline.digest, cache_dir)
    dr = [s for s in train if s.label is Label.RETAIN]
    base_summary = summarize(evaluate(base_model, tokenizer, dev, batch_size=cfg.eval_batch))
    trainer = CircuitBreakerTrainer(
        base_model_dir=baseline_dir, ds=ds, dr=dr, out_root=cache_dir / "trained", progress=progress
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for value in values:
        for seed in seeds:
            t = time.perf_counter()
            art = trainer.train(replace(cfg.cb, **{knob: value}, seed=seed))
            model = load_adapter(art, baseline_dir)
            row = summarize(evaluate(model, tokenizer, dev, batch_size=cfg.eval_batch))
            row["wall_s"] = round(time.perf_counter() - t, 1)
            table.setdefault(str(value), {})[str(seed)] = row
            progress(f"sweep {knob}={value} seed {seed}: {json.dumps(row)}")
    default = str(getattr(cfg.cb, knob))
    chosen = select(table, baseline_benign=base_summary["benign_success"], default=default)
    return {
        "knob": knob,
        "values": [str(v) for v in values],
        "seeds": list(seeds),
        "split": "dev",
        "n_dev": len(dev),
        "baseline": base_summary,
        "table": table,
        "default": default,
        "chosen": chosen,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--knob", required=True, help="NAME=V1,V2 (a CircuitBreakerConfig field)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    knob, values = _parse_knob(args.knob)
    seeds = [int(s) for s in args.seeds.split(",")]
    result = run_sweep(cache_dir=args.cache_dir, knob=knob, values=values, seeds=seeds)
    write_json_atomic(args.out, result)
    print(json.dumps({"chosen": result["chosen"], "default": result["default"]}))


if __name__ == "__main__":
    main()
