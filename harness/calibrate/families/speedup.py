"""Log speedups from paired latencies: the compression phase's ``decode_speedup`` design.

The gate (gates/compression.yaml) is a Student-t ``mean`` over prompts of
``ln(fp32 s/token ÷ ternary s/token)``, each a ratio of two means of timed decode
steps on the same prompt in the same interleaved round; the harness's paired
``ratio`` takes 0/1 outcomes only, so this is a documented deviation, and the
``mean (unbounded)`` row (normal values, n = 20) does not cover it.  Here the
latencies are simulated the way a shared machine produces them:

* a per-prompt load factor, log-normal (σ = 0.5), shared by both formats of the pair
  (interleaving puts them in the same load);
* per decode step, log-normal jitter (σ = 0.2), and in the ``spiky`` design a 10 %
  chance of a 1.5–4× stall (descheduling), drawn independently per format;
* 11 timed steps per prompt and format, as in ``trainers.bitnet.speed_run``.

fp32's base latency is exactly 2× the ternary's and both formats draw their noise
from the same law, so ``ln(mean fp / mean ternary)`` has expectation exactly ln 2 (the
two log-means are exchangeable): the true mean sits on the threshold.
"""

from __future__ import annotations

import math

import numpy as np

from harness.calibrate.core import (
    ALPHA,
    CalibrationRow,
    binary_outcomes,
    calibration_gate,
    register_family,
    row_from_estimates,
)
from harness.metrics import estimate_metric

__all__: list[str] = []

_STEPS = 11
_LN2 = math.log(2.0)


def _latencies(rng: np.random.Generator, shape: tuple[int, ...], spiky: bool) -> np.ndarray:
    x = rng.lognormal(0.0, 0.2, (*shape, _STEPS))
    if spiky:
        stall = rng.random(x.shape) < 0.1
        x = np.where(stall, x * rng.uniform(1.5, 4.0, x.shape), x)
    return np.asarray(x.mean(axis=-1))


def log_speedups(rng: np.random.Generator, reps: int, n: int, *, spiky: bool) -> np.ndarray:
    """``(reps, n)`` per-prompt ln speedups whose expectation is exactly ln 2."""
    load = rng.lognormal(0.0, 0.5, (reps, n))
    fp = 2.0 * load * _latencies(rng, (reps, n), spiky)
    tern = 1.0 * load * _latencies(rng, (reps, n), spiky)
    return np.asarray(np.log(fp / tern))


@register_family("log_speedup")
def _log_speedup(reps: int, rng: np.random.Generator, small: bool) -> list[CalibrationRow]:
    gate = calibration_gate(
        "mean",
        _LN2,
        bounds="unbounded",
        normality="calibration: logs of ratios of mean step latencies",
    )
    rows = []
    for n in (10,) if small else (6, 10, 20):
        for spiky in (False, True):
            values = log_speedups(rng, reps, n, spiky=spiky)
            ests = [
                estimate_metric(gate, binary_outcomes(v, "prompt-"), alpha=2 * ALPHA)
                for v in values
            ]
            design = "log-normal jitter + 10 % stalls" if spiky else "log-normal jitter"
            rows.append(row_from_estimates("log_speedup", ests, _LN2, {"latencies": design}))
    return rows
