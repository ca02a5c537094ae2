"""One decision per (gate, arm) over every seeded run of that arm.

The circuit-breaker arms are trained on several seeds.  For gates with sampling
error the suite decides the claim "every run meets the threshold" on the
worst-run bounds of :func:`harness.stats.seeds.worst_run_estimate` (each run's
own estimate, as the gate would compute it alone, at α on the PASS side and at
α/k on the FAIL side); exact ``count`` gates are decided on the runs' outcomes
pooled (a sum over runs is ≤ 0 exactly when every run's is).  The per-run
numbers go into the evidence beside the pooled verdict (:func:`seed_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness import metrics
from harness.gate import Gate
from harness.outcomes import Outcome
from harness.spec import Direction
from harness.stats.estimate import Estimate
from harness.stats.seeds import worst_run_estimate

__all__ = ["seed_table", "worst_seed_estimate"]


def worst_seed_estimate(
    gate: Gate,
    runs: Mapping[str, Sequence[Outcome]],
    *,
    baselines: Mapping[str, Sequence[Outcome]] | None = None,
) -> Estimate:
    """The worst run's bounds for ``gate`` over ``runs`` (run key → outcomes).

    ``baselines`` gives each run's paired reference (comparative gates): the same
    baseline for every seed, or the other arm's run at the same seed.
    """
    a = gate.alpha_decision
    k = len(runs)
    keys = list(runs)

    def est(key: str, two_sided: float) -> Estimate:
        base = None if baselines is None else baselines[key]
        return metrics.estimate_metric(
            gate.spec, runs[key], alpha=two_sided, baseline=base, seed=gate.options.seed
        )

    return worst_run_estimate(
        [est(key, 2 * a) for key in keys],
        [est(key, 2 * a / k) for key in keys],
        greater=gate.spec.direction is Direction.GE,
        alpha=a,
        labels=keys,
    )


def seed_table(estimate: Estimate, *, unit: str = "") -> str:
    """Markdown: one row per run (estimate and its α-level bounds), then the pooled bound."""
    runs = estimate.extra.get("runs", {})
    lines = [
        f"| run | estimate{f' ({unit})' if unit else ''} | one-sided bounds at α | bounds at α/k |",
        "|---|---|---|---|",
    ]
    for key, r in runs.items():
        lines.append(
            f"| {key} | {r['value']:.4g} | [{r['lo']:.4g}, {r['hi']:.4g}] "
            f"| [{r['lo_fail_side']:.4g}, {r['hi_fail_side']:.4g}] |"
        )
    lines.append(
        f"| **worst run (decides)** | {estimate.value:.4g} | "
        f"[{estimate.lo:.4g}, {estimate.hi:.4g}] | mean over runs "
        f"{estimate.extra.get('mean_over_runs', float('nan')):.4g} |"
    )
    return "\n".join(lines)
