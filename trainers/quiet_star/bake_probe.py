"""Step 1 only: bake the input model and score baking convergence on ``dev``; print JSON.

    PYTHONPATH=. python -m trainers.quiet_star.bake_probe [--set key=value ...] [--every N]

Why a probe of its own: the baking knobs (``bake_steps``, ``bake_lr``, ``trace_width``)
are chosen on the ``dev`` split, and the full run (:mod:`trainers.quiet_star.run`) also
pays for Step 2, the theater control and the ablations — several CPU-minutes per point
on a shared 2-core machine.  This runs the same stages as the pipeline's main arm up to
the convergence score (input model, the 12 tokens, :func:`~trainers.quiet_star.stages.bake`,
:func:`~trainers.quiet_star.stages.baking_eval`), with the same seeds, so a point here is
the number the phase's ``baking_convergence`` gate would see on ``dev``.  ``--every N``
also scores the first 100 dev traces every ``N`` steps (a learning curve; mid-schedule
points are not shorter runs: the one-cycle schedule depends on the total).  It never
scores ``held_out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from harness.data.arithmetic import make_splits
from harness.settings import get_settings
from trainers.quiet_star import pipeline
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.stages import bake, baking_eval
from trainers.quiet_star.tokens import add_thought_tokens
from trainers.quiet_star.traces import Trace

__all__ = ["error_kinds", "main"]


def _numbers(toks: Sequence[str]) -> list[object]:
    """Strategy tokens and whole numbers of a thought, in order (``<n> 2 1 </n>`` → 12)."""
    out: list[object] = []
    cur: list[str] | None = None
    for p in toks:
        if p == "<n>":
            cur = []
        elif p == "</n>":
            out.append(int("".join(reversed(cur))) if cur else None)
            cur = None
        elif cur is not None:
            cur.append(p)
        elif p.startswith("["):
            out.append(p)
    return out


def error_kinds(
    vocab: Vocab, traces: Sequence[Trace], rows: Sequence[dict[str, Any]]
) -> Counter[str]:
    """Where each wrong greedy thought first departs from the program trace.

    ``extract`` (the first number), ``operation`` (a strategy token), ``operand`` (the
    number after it), ``value`` (the running value: the arithmetic), ``length``.
    """
    kinds: Counter[str] = Counter()
    for t, r in zip(traces, rows, strict=True):
        want = _numbers(vocab.tokens(vocab.thought(t.thought)))
        got = _numbers(str(r["thought"]).split())
        if want == got:
            kinds["exact"] += 1
            continue
        kind = "length"
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            if a != b:
                if i == 1:
                    kind = "extract"
                elif isinstance(a, str):
                    kind = "operation"
                else:
                    kind = "operand" if isinstance(want[i - 1], str) else "value"
                break
        kinds[kind] += 1
    return kinds


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _NoTracker:
    """Pretraining's tracker when nothing is logged (the probe prints its own numbers)."""

    def log(self, *_a: Any, **_k: Any) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    """Parse ``--set`` overrides, bake, score on dev, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--every", type=int, default=0)
    args = ap.parse_args(argv)
    over: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        parsed = json.loads(value)
        over[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    if over.pop("eval_split", "dev") != "dev":
        ap.error("this probe scores dev only; knobs are never chosen on held_out")
    cfg = dataclasses.replace(QuietStarConfig(), **over, eval_split="dev")
    torch.set_num_threads(cfg.threads)
    splits: dict[str, list[Any]] = dict(make_splits(cfg.splits(), difficulties=cfg.levels))  # type: ignore[arg-type]
    start = pipeline._input_model(cfg, get_settings().models_dir, splits["train"])
    overlap = pipeline.drop_champion_questions(start, splits, cfg)
    c0 = _cpu()
    if start.source == "embedded":
        pipeline._pretrain(start, splits, cfg, _NoTracker())  # type: ignore[arg-type]
    added = add_thought_tokens(start.model, start.tokenizer)
    vocab = Vocab.of(start.tokenizer)
    width = cfg.trace_width
    train = pipeline._traces(splits["train"], control=False, filler_len=0, width=width)
    dev = pipeline._traces(splits["dev"], control=False, filler_len=0, width=width)
    curve: list[dict[str, float]] = []

    def log(_stage: str, step: int, metrics: dict[str, float]) -> None:
        if args.every and step > 0 and step % args.every == 0:
            part = baking_eval(start.model, vocab, dev[:100], cfg)
            share = sum(r["well_formed"] and r["answer_exact"] for r in part) / len(part)
            curve.append({"step": step, "loss": metrics["loss"], "convergence_100": share})

    c1 = _cpu()
    losses = bake(start.model, vocab, train, cfg, log, steps=cfg.bake_steps)
    c2 = _cpu()
    rows = baking_eval(start.model, vocab, dev, cfg)
    n = len(rows)
    out = {
        "input": start.source,
        "overlap": {k: v for k, v in overlap.items() if k != "dropped"},
        "start_init": added.start_init,
        "config": {k: cfg.to_dict()[k] for k in ("bake_steps", "bake_lr", "trace_width")},
        "n_dev": n,
        "convergence": sum(r["well_formed"] and r["answer_exact"] for r in rows) / n,
        "trace_exact": sum(r["trace_exact"] for r in rows) / n,
        "well_formed": sum(r["well_formed"] for r in rows) / n,
        "error_kinds": dict(error_kinds(vocab, dev, rows)),
        "bake_loss_last20": sum(losses[-20:]) / len(losses[-20:]),
        "curve": curve,
        "cpu_seconds": {"pretrain": c1 - c0, "bake": c2 - c1, "score": _cpu() - c2},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
