"""How many prompts the ``decode_speedup`` gate times: planned from a pilot timing in the same run.

The gate is a one-sample Student t on per-prompt ln speedups.  How noisy those
are depends on the machine *now*: on a quiet machine the per-prompt standard
deviation is ≈ 0.1 and a handful of prompts decide the gate; on the shared
machine under load it reached ≈ 0.45 and ten prompts left a 2.55× geometric
mean INCONCLUSIVE (lower bound 1.97×).  A fixed n is too many on a quiet
machine and too few on a busy one.

So the run first times a **pilot** — a separately seeded wide model of the same
shape and its own prompts, never judged, after a one-prompt warm-up (the first
wide timing in a process runs 2–7× slower in both formats, docs/compression.md)
— and :func:`plan_prompts` turns the
pilot's ln speedups into the judged sample size: the smallest n whose one-sided
t-test at the gate's α has power ≥ 0.8 to decide the gate (PASS if the pilot
mean is above the threshold, FAIL if below), taking the pilot mean as the
truth and an 80 % upper confidence limit for its standard deviation (a
standard pilot-study correction: a 5-value sd is often too small).  n is kept
within [:data:`MIN_PROMPTS`, :data:`MAX_PROMPTS`].  The judged prompts are then
timed afresh; their n depends on the pilot only, never on the judged timings,
so the fixed-n t interval stays valid (``harness calibrate --family
log_speedup_planned`` checks the two-stage design's false-PASS rate).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats
from statsmodels.stats.power import TTestPower

from harness.errors import StatsError

__all__ = [
    "MAX_PROMPTS",
    "MIN_PROMPTS",
    "PILOT_PROMPTS",
    "PromptPlan",
    "pilot_log_speedups",
    "plan_prompts",
    "required_effect_sizes",
]

#: pilot prompts timed before the judged ones (their values plan n only)
PILOT_PROMPTS = 5
#: the smallest n the Student-t design is calibrated at (harness calibrate --family log_speedup)
MIN_PROMPTS = 6
#: cost cap: ≈ 5 CPU-s per prompt (three interleaved arms) on the shared 2-core machine
MAX_PROMPTS = 40
TARGET_POWER = 0.8
SD_UPPER_CONFIDENCE = 0.8


class PromptPlan(BaseModel):
    """The judged sample size and how it was chosen (evidence)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    pilot: list[float]
    pilot_mean: float
    pilot_sd: float
    planning_sd: float
    effect_size: float
    power_at_n: float
    capped: bool
    rule: str


def pilot_log_speedups(speed: Mapping[str, Any], *, fmt: str = "ternary") -> list[float]:
    """Per-prompt ln(fp32 s/token ÷ ``fmt`` s/token) of a speed measurement's wide model."""
    times = speed["wide"]["seconds_per_token"]
    return [math.log(b / f) for b, f in zip(times["fp32"], times[fmt], strict=True)]


@functools.lru_cache(maxsize=64)
def required_effect_sizes(*, alpha: float, power: float, n_min: int, n_max: int) -> np.ndarray:
    """Per n in [n_min, n_max]: the smallest effect size a one-sided t-test detects with ``power``.

    Power grows with the effect size, so "n has power ≥ p at d" ⇔ d ≥ this value;
    computed once per (α, power, range) with statsmodels' ``TTestPower``.
    """
    analysis = TTestPower()
    out = [
        float(analysis.solve_power(nobs=n, alpha=alpha, power=power, alternative="larger"))
        for n in range(n_min, n_max + 1)
    ]
    return np.asarray(out, dtype=float)


def plan_prompts(
    pilot: Sequence[float],
    *,
    threshold: float,
    alpha: float,
    power: float = TARGET_POWER,
    n_min: int = MIN_PROMPTS,
    n_max: int = MAX_PROMPTS,
    sd_confidence: float = SD_UPPER_CONFIDENCE,
) -> PromptPlan:
    """Smallest n in [n_min, n_max] whose one-sided t-test at ``alpha`` has ``power``.

    Effect size d = |pilot mean − threshold| / s⁺, with s⁺ the pilot standard
    deviation's upper ``sd_confidence`` limit (χ² with m − 1 df).  A pilot on the
    threshold (d = 0) gets ``n_max``: nothing smaller can be planned to decide it.
    """
    x = np.asarray(pilot, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise StatsError(f"a prompt plan needs ≥ 2 finite pilot values, got {list(pilot)!r}")
    if not (2 <= n_min <= n_max):
        raise StatsError(f"prompt plan bounds n_min={n_min}, n_max={n_max}: need 2 ≤ n_min ≤ n_max")
    m = len(x)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    upper_sd = sd * math.sqrt((m - 1) / float(stats.chi2.ppf(1.0 - sd_confidence, m - 1)))
    gap = abs(mean - threshold)
    effect = math.inf if upper_sd == 0.0 and gap > 0 else (gap / upper_sd if upper_sd else 0.0)
    needed = required_effect_sizes(alpha=alpha, power=power, n_min=n_min, n_max=n_max)
    decisive = np.nonzero(effect >= needed)[0]
    n = n_min + int(decisive[0]) if len(decisive) else n_max
    achieved = (
        1.0
        if math.isinf(effect)
        else float(TTestPower().power(effect, n, alpha, alternative="larger"))
    )
    return PromptPlan(
        n=n,
        pilot=[float(v) for v in x],
        pilot_mean=mean,
        pilot_sd=sd,
        planning_sd=upper_sd,
        effect_size=effect if math.isfinite(effect) else 1e9,
        power_at_n=achieved,
        capped=achieved < power,
        rule=(
            f"smallest n in [{n_min}, {n_max}] whose one-sided t-test at α={alpha:.4g} has "
            f"power ≥ {power:g} for |pilot mean − {threshold:.4g}| / s⁺, s⁺ = the {m}-prompt "
            f"pilot sd's {sd_confidence:.0%} upper confidence limit"
        ),
    )
