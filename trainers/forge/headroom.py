"""Measure the arithmetic task's headroom for a char-level tiny Llama (prints one JSON line).

    PYTHONPATH=. python -m trainers.forge.headroom --steps 400 --levels 1,2,3,4

Not part of the test run (minutes of CPU).  Trains on the ``train`` split and reports
exact match on ``dev`` per difficulty level (a design probe: never on ``held_out``,
which the forge gates judge); docs/forge.md records measured numbers.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from harness.data.arithmetic import make_splits
from trainers.forge.charlm import exact_match, tiny_char_llama, train_steps

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Parse options, train once, print the dev accuracy by level."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--levels", default="1,2,3,4")
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-dev", type=int, default=400)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    levels = tuple(int(x) for x in args.levels.split(","))
    sp = make_splits({"train": args.n_train, "dev": args.n_dev}, difficulties=levels)
    model = tiny_char_llama(hidden=args.hidden, layers=args.layers, heads=4, seed=0)
    t0 = time.perf_counter()
    losses = train_steps(model, sp["train"], steps=args.steps, batch=32, lr=3e-3)
    ok = exact_match(model, sp["dev"])
    by: dict[int, list[bool]] = {}
    for item, hit in zip(sp["dev"], ok, strict=True):
        by.setdefault(item.difficulty, []).append(hit)
    print(
        json.dumps(
            {
                "steps": args.steps,
                "train_seconds": round(time.perf_counter() - t0, 1),
                "final_loss": round(sum(losses[-20:]) / min(20, len(losses)), 3),
                "dev_exact_match": round(sum(ok) / len(ok), 4),
                "by_level": {d: round(sum(v) / len(v), 4) for d, v in sorted(by.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
