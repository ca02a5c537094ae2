"""The first wide-model decode timing in a process vs the next ones (why decode_speedup warms up).

Run:  python benchmarks/decode_cold_start.py [--calls 3] [--prompts 5] [--threads 1]

In one process it builds the compression phase's realistic-width random Llama
``--calls`` times (a new seed each call, as the suite's warm-up, pilot and
judged measurements do) and times ``--prompts`` interleaved batch-1 greedy
decodes of fp32 and the packed ternary model each time
(:func:`trainers.bitnet.speed.interleaved_decode`, the suite's own timing).  It
prints the median ms/token per call and format, the geometric-mean speedup per
call, and each call's median ms/token relative to the last call's (the
baseline measured in the same run).  The claim (docs/compression.md, *Cold
start*): the first call is several times slower than the later ones in both
formats, so the suite times a throw-away warm-up before the pilot.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from trainers.bitnet.speed import interleaved_decode, packed_copy, wide_random_llama


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for call in range(args.calls):
        t0 = time.perf_counter()
        fp = wide_random_llama(
            hidden=2048, intermediate=5632, layers=3, heads=16, vocab=512, seed=call
        )
        packed = packed_copy(fp)
        gen = torch.Generator().manual_seed(call)
        prompts = [torch.randint(0, 512, (1, 16), generator=gen) for _ in range(args.prompts)]
        timing = interleaved_decode(
            {"fp32": fp, "ternary": packed}, prompts, new_tokens=12, threads=args.threads
        )
        fp_s, tern_s = timing["fp32"].seconds_per_token, timing["ternary"].seconds_per_token
        speedup = math.exp(
            float(np.mean([math.log(a / b) for a, b in zip(fp_s, tern_s, strict=True)]))
        )
        rows.append((call, 1e3 * np.median(fp_s), 1e3 * np.median(tern_s), speedup))
        print(
            f"call {call}: fp32 {rows[-1][1]:.1f} ms/token, ternary {rows[-1][2]:.1f} ms/token, "
            f"speedup {speedup:.2f}x ({time.perf_counter() - t0:.1f} s wall)",
            flush=True,
        )
        del fp, packed
    last = rows[-1]
    for call, fp_ms, tern_ms, _ in rows:
        print(
            f"call {call} vs call {last[0]}: fp32 {fp_ms / last[1]:.2f}x slower, "
            f"ternary {tern_ms / last[2]:.2f}x slower"
        )


if __name__ == "__main__":
    main()
