"""Stage 1 validator throughput: warm-pool batch vs a fresh container per item vs the host.

Run:  python benchmarks/action_validator_throughput.py [--root DIR] [--copies 2] [--cold 8]

Uses the codemod records of a processed code-edit set (``--root``; default: builds the
embedded set into a temporary directory, ~40 s) and their ground-truth actions.  In
the same run it measures items/s of

* ``warm``  — :func:`validate_actions` on one warm DockerSandbox (the default pool size),
  all items in one batch (what the gates and the filter do);
* ``cold``  — a new DockerSandbox (container start) per item, on ``--cold`` items (the
  naive design the validator avoids);
* ``host``  — :func:`apply_action` on the host, unsandboxed (the weaker data-side check),

and prints the ratios warm/cold and warm/host.  Every item must succeed in every mode.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--cold", type=int, default=8)
    args = ap.parse_args()

    from harness.data.code_edit.action import parse_action
    from harness.data.code_edit.apply import apply_action
    from harness.data.code_edit.store import read_processed
    from harness.evaluators.code_edit_actions import normalize_code, validate_actions
    from sandbox.astgrep_image import ensure_astgrep_image
    from sandbox.docker_pool import DockerSandbox
    from trainers.code_edit.generate import build_embedded

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "processed"
            build_embedded(root=root, seed=0)
        records = [r for r in read_processed(root=root) if r.action is not None]
    actions = [parse_action(r.action or {}).rule_yaml() for r in records]
    image = ensure_astgrep_image()
    recs, acts = records * args.copies, actions * args.copies

    with DockerSandbox(image=image) as box:
        validate_actions(recs[:4], acts[:4], sandbox=box)  # warm-up: zygotes forked once
        t0 = time.perf_counter()
        warm = validate_actions(recs, acts, sandbox=box)
        warm_s = time.perf_counter() - t0
        pool = box.parallelism
    assert all(o.success for o in warm), [o.reason for o in warm if not o.success][:3]

    t0 = time.perf_counter()
    for rec, act in zip(records[: args.cold], actions[: args.cold], strict=False):
        with DockerSandbox(image=image, pool_size=1) as one:
            assert validate_actions([rec], [act], sandbox=one)[0].success
    cold_s = time.perf_counter() - t0
    n_cold = min(args.cold, len(records))

    t0 = time.perf_counter()
    for rec in recs:
        got = apply_action(rec.action or {}, rec.pre_code)
        assert normalize_code(got) == normalize_code(rec.post_code)
    host_s = time.perf_counter() - t0

    warm_rate, cold_rate, host_rate = len(recs) / warm_s, n_cold / cold_s, len(recs) / host_s
    print(f"items: {len(recs)} ({len(records)} codemod records x {args.copies}); pool {pool}")
    print(f"warm pool batch      {warm_rate:8.1f} items/s  ({warm_s:.2f} s)")
    print(f"container per item   {cold_rate:8.1f} items/s  ({cold_s:.2f} s for {n_cold})")
    print(f"host, unsandboxed    {host_rate:8.1f} items/s  ({host_s:.2f} s)")
    print(f"ratio warm/cold {warm_rate / cold_rate:.1f}x; warm/host {warm_rate / host_rate:.2f}x")


if __name__ == "__main__":
    main()
