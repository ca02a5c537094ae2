"""Circuit-breaker phase: turn one ``PhaseRun`` (trainers.circuit_breaker.pipeline) into Outcomes.

The run (data, audit, baseline SFT, Ds filtering, two LoRA arms, evaluation)
happens once per session in ``trainers.circuit_breaker.pipeline``; this module
only maps its records to the per-item :class:`~harness.outcomes.Outcome` lists
each gate in ``gates/circuit_breaker.yaml`` decides on:

* Gate 1 — data counts (one outcome per sample, ``count`` with ``of: n``), the
  Dr:Ds ratio (one outcome carrying the ratio) and format problems per audited
  sample (``count`` ≤ 0);
* Gate 2 — non-finite losses per logged step, ``rr/cos_sim_mean`` over the first
  50 steps (``trend_slope``), incoherent outputs (``count`` ≤ 0);
* Gate 3 — per arm run (``run_key(arm, seed)``) and per eval item: correct / no
  tool call / harmful (paired with the baseline by item id) / benign capability,
  optionally restricted to some template groups (the held-out families).

Each trained arm has one run per seed; :func:`seed_runs` lists them and
:func:`pooled` concatenates per-run outcomes (item ids prefixed by the run) for
exact count gates, where the sum over runs is ≤ 0 exactly when every run is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.outcomes import Outcome
from trainers.circuit_breaker.data import HELDOUT_FAMILY_GROUPS
from trainers.circuit_breaker.pipeline import ARMS, PhaseRun

__all__ = [
    "ARMS",
    "HELDOUT_FAMILY_GROUPS",
    "arm_outcomes",
    "cos_trend_outcomes",
    "count_outcomes",
    "format_outcomes",
    "group_table",
    "incoherent_outcomes",
    "nonfinite_outcomes",
    "pooled",
    "ratio_outcome",
    "raw_rows",
    "seed_runs",
]


def count_outcomes(run: PhaseRun, key: str) -> list[Outcome]:
    """One outcome per sample of a data bucket (``ds``, ``dr``, ``adversarial_safe``)."""
    n = int(run.counts[key])
    return [Outcome(item_id=f"{key}-{i}", value=1.0) for i in range(n)]


def ratio_outcome(run: PhaseRun) -> list[Outcome]:
    """The Dr:Ds ratio as one exact value (``count`` gate, ``of: sum``)."""
    ds = int(run.counts["ds"])
    value = run.counts["dr"] / ds if ds else 0.0  # no Ds: the gate must not pass vacuously
    return [Outcome(item_id="dr_per_ds", value=value, raw=dict(run.counts))]


def format_outcomes(run: PhaseRun) -> list[Outcome]:
    """Format problems over all audited samples; value 1 marks a non-compliant sample."""
    bad = len(run.format_problems)
    return [
        Outcome(
            item_id=f"audited-{i}",
            value=1.0 if i < bad else 0.0,
            raw={"problem": run.format_problems[i]} if i < bad else {},
        )
        for i in range(run.n_audited)
    ]


def nonfinite_outcomes(run: PhaseRun, arm: str) -> list[Outcome]:
    """Per logged training step: how many loss values were NaN/Inf."""
    out = []
    for row in run.train_logs[arm]:
        n = sum(
            1
            for k, v in row.items()
            if k.startswith("loss/") and (isinstance(v, str) or v != v or abs(v) == float("inf"))
        )
        out.append(Outcome(item_id=f"{arm}-step-{row['step']}", value=float(n), raw=row))
    return out


def cos_trend_outcomes(run: PhaseRun, arm: str, *, first: int = 50) -> list[Outcome]:
    """``rr/cos_sim_mean`` of the first ``first`` steps, in step order (trend_slope input)."""
    rows = [r for r in run.train_logs[arm] if "rr/cos_sim_mean" in r][:first]
    return [
        Outcome(item_id=f"{arm}-step-{r['step']:05d}", value=float(r["rr/cos_sim_mean"]), raw=r)
        for r in rows
    ]


def incoherent_outcomes(run: PhaseRun, arm: str) -> list[Outcome]:
    """One outcome per eval output; value 1 = the collapse detector flagged it."""
    return [
        Outcome(
            item_id=r["item_id"],
            value=0.0 if r["coherent"] else 1.0,
            raw={"output": r["output"], "reasons": list(r["coherence_reasons"])},
        )
        for r in run.results[arm]
    ]


def seed_runs(run: PhaseRun, arm: str) -> list[str]:
    """Result keys of every seeded run of ``arm`` (``["baseline"]`` for the baseline)."""
    return run.runs(arm)


def pooled(per_run: dict[str, list[Outcome]]) -> list[Outcome]:
    """All runs' outcomes in one list, item ids prefixed by the run so none collide."""
    return [
        Outcome(
            item_id=f"{key}/{o.item_id}",
            value=o.value,
            cluster=o.cluster,
            latency_s=o.latency_s,
            raw=o.raw,
        )
        for key, outcomes in per_run.items()
        for o in outcomes
    ]


def arm_outcomes(
    run: PhaseRun,
    arm: str,
    flag: str,
    *,
    kind: str,
    groups: tuple[str, ...] | None = None,
) -> list[Outcome]:
    """Per eval item of ``kind`` (``attack``/``benign``): the 0/1 ``flag`` of the ``arm`` run.

    ``arm`` is a result key (``baseline`` or ``run_key(arm, seed)``).  Flags:
    ``correct``, ``harmful``, ``no_tool_call``.  Item ids are shared by all runs,
    so comparative gates pair a run with the baseline item by item.  ``groups``
    keeps only attacks of those template groups (e.g. the held-out families).
    """
    if arm not in run.results:
        raise KeyError(f"unknown arm '{arm}'; arms: {', '.join(run.results)}")
    return [
        Outcome(
            item_id=r["item_id"],
            value=1.0 if r[flag] else 0.0,
            cluster=r.get("template_id"),
            raw={"output": r["output"], "parsed": r["parsed"], "parse_mode": r["parse_mode"]},
        )
        for r in run.results[arm]
        if r["kind"] == kind and (groups is None or r.get("group") in groups)
    ]


def raw_rows(run: PhaseRun, arm: str) -> Sequence[dict[str, Any]]:
    """Every raw eval output of an arm (the evidence's raw-output file)."""
    return run.results[arm]


def group_table(run: PhaseRun, *, flags: tuple[str, ...] = ("harmful", "correct")) -> str:
    """Markdown: per run (baseline, every seeded arm run) and eval template group, each flag's
    rate on the attacks (``harmful`` = ASR), so the held-out families can be read at a glance."""
    groups: list[str] = []
    for r in run.results["baseline"]:
        g = r.get("group")
        if r["kind"] == "attack" and g is not None and g not in groups:
            groups.append(g)
    head = "| run | " + " | ".join(f"{g} {f}" for g in groups for f in flags) + " |"
    lines = [head, "|---|" + "---|" * (len(groups) * len(flags))]
    for arm in ARMS:
        for key in run.runs(arm):
            cells = []
            for g in groups:
                rows = [
                    r for r in run.results[key] if r["kind"] == "attack" and r.get("group") == g
                ]
                for f in flags:
                    cells.append(f"{sum(bool(r[f]) for r in rows) / max(1, len(rows)):.3f}")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
