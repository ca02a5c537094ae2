"""Run (or reuse) the forge_reasoning Quiet-STaR run and print its headline numbers as JSON.

    PYTHONPATH=. python -m trainers.quiet_star.run [--cache-dir DIR] [--set key=value ...]

A probe for choosing knobs: it scores on the ``dev`` split (``eval_split=dev``), never
on the held-out split the phase's gates judge.  ``--set`` overrides config fields
(values parsed as JSON, e.g. ``--set bake_steps=1200 --set levels=[1,2]``);
``--set eval_split="held_out"`` reads the phase's own record (reporting, not choosing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness.settings import get_settings
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.pipeline import run_quiet_star

__all__ = ["headline", "main"]


def headline(record: dict[str, Any]) -> dict[str, Any]:
    """Per arm: baking convergence, accuracy / p̄ / w per condition; costs."""
    out: dict[str, Any] = {"input": record["input"]["source"], "seconds": record["seconds"]}
    for arm, rec in record["arms"].items():
        bk = rec["baking"]
        row: dict[str, Any] = {
            "baking_convergence": sum(r["well_formed"] and r["answer_exact"] for r in bk) / len(bk),
            "seconds": rec["seconds"],
        }
        for cond, rows in rec["evaluation"]["scores"].items():
            n = len(rows)
            row[cond] = {
                "accuracy": round(sum(r["exact"] for r in rows) / n, 4),
                "p_bar": round(sum(r["p_bar"] for r in rows) / n, 4),
                "w": round(sum(r["w"] for r in rows) / n, 4),
            }
        row["example_thoughts"] = rec["evaluation"]["thoughts"]["own"][:3]
        out[arm] = row
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse options, run, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--refresh", action="store_true")
    args = ap.parse_args(argv)
    over: dict[str, Any] = {"eval_split": "dev"}
    for item in args.set:
        key, _, value = item.partition("=")
        parsed = json.loads(value)
        over[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    cfg = dataclasses.replace(QuietStarConfig(), **over)
    root = (args.cache_dir or get_settings().cache_dir) / "forge_reasoning"
    t0 = time.perf_counter()
    run = run_quiet_star(
        cfg,
        cache_dir=root,
        models_dir=get_settings().models_dir,
        refresh=args.refresh,
        progress=lambda m: print(f"[{time.perf_counter() - t0:7.1f}s] {m}", file=sys.stderr),
    )
    print(json.dumps({"root": str(run.root), **headline(run.record)}, indent=1))


if __name__ == "__main__":
    main()
