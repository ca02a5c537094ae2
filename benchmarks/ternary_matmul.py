"""Batch-1 ternary GEMV (2-bit packed weights, int8 activations) vs dense baselines.

Run:  python benchmarks/ternary_matmul.py [--shapes 2048x2048,4096x4096,8192x8192]
                                          [--rounds 15] [--threads 1]

For every shape (out × in) it times, *interleaved in the same run* (the order of
the formats rotates every round, so load from other processes hits all alike):

* ``fp32``   — ``torch.nn.functional.linear`` with float32 weights (the baseline);
* ``bf16``   — the same with bfloat16 weights and input;
* ``int8wo`` — int8 weight-only: ``torch._weight_int8pack_mm`` (per-row scales);
* ``ternary`` — the packed layer end to end: per-token absmax int8 quantization of
  the float input, the numba 2-bit kernel (:mod:`trainers.bitnet.kernel`), rescale.

It prints the median ms per call, the weight bytes each format reads per call,
the bandwidth that achieves, the machine's measured read bandwidth, and the
speedup of ternary over each baseline as the median of per-round ratios with
the 10th–90th percentile of those ratios.  The claim: ternary ≥ 2× fp32 on
every shape from 2048² to 8192².  Exactness is checked first (kernel vs an
integer reference matmul) and the run aborts on a mismatch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from trainers.bitnet.kernel import PackedTernaryLinear, pack_codes, set_threads, ternary_matmul_int
from trainers.bitnet.quant import absmean_ternary
from trainers.bitnet.speed import measure_bandwidth


def _time(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def _check_exact(layer: PackedTernaryLinear, codes: torch.Tensor, k: int) -> None:
    x = np.random.default_rng(0).integers(-128, 128, size=(1, k)).astype(np.int8)
    ref = x.astype(np.int64) @ codes.numpy().astype(np.int64).T
    if not np.array_equal(ternary_matmul_int(layer.packed, x), ref):
        raise SystemExit("ternary kernel does not match the integer reference: aborting")


def bench_shape(n: int, k: int, rounds: int, reps: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    w = torch.randn(n, k) * 0.02
    x = torch.randn(1, k)
    codes, scale = absmean_ternary(w)
    layer = PackedTernaryLinear(pack_codes(codes.numpy()), scale, k, None)
    _check_exact(layer, codes, k)
    wb, xb = w.bfloat16(), x.bfloat16()
    w8_scale = w.abs().amax(dim=1) / 127.0
    w8 = (w / w8_scale[:, None]).round().clamp(-127, 127).to(torch.int8)
    fns = {
        "fp32": lambda: F.linear(x, w),
        "bf16": lambda: F.linear(xb, wb),
        "int8wo": lambda: torch._weight_int8pack_mm(x, w8, w8_scale),
        "ternary": lambda: layer(x),
    }
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_time(fns[name], reps))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shapes", default="2048x2048,4096x4096,8192x8192")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=5, help="calls per timed sample")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    set_threads(args.threads)
    bw = measure_bandwidth(threads=args.threads)
    print(f"threads={args.threads}  measured read bandwidth {bw:.1f} GB/s (sum over 512 MiB fp32)")
    bytes_per_weight = {"fp32": 4.0, "bf16": 2.0, "int8wo": 1.0, "ternary": 0.25}
    hdr = f"{'shape':>11} {'format':>8} {'ms/call':>8} {'MB/call':>8} {'GB/s':>6} {'% bw':>5}"
    hdr += "  ternary speedup: median [p10, p90] of per-round ratios"
    print(hdr)
    for shape in args.shapes.split(","):
        n, k = (int(v) for v in shape.lower().split("x"))
        times = bench_shape(n, k, args.rounds, args.reps)
        tern = np.array(times["ternary"])
        for name, ts in times.items():
            med = float(np.median(ts))
            mb = n * k * bytes_per_weight[name] / 1e6
            line = f"{shape:>11} {name:>8} {med * 1e3:8.3f} {mb:8.1f} {mb / 1e3 / med:6.1f}"
            line += f" {100 * mb / 1e3 / med / bw:5.0f}"
            if name != "ternary":
                ratio = np.array(ts) / tern
                p10, p50, p90 = np.percentile(ratio, [10, 50, 90])
                line += f"  {p50:5.2f}x [{p10:.2f}, {p90:.2f}]"
            print(line, flush=True)


if __name__ == "__main__":
    main()
