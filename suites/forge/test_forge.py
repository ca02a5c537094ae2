"""Forge phase gates (gates/forge.yaml) on the embedded default run.

Subjects: the three Cognate specialists (each model, each pair) and the EvoMerge
champion.  Pipeline controls prove the gates can fail on a broken input: the untrained
shared initialisation (accuracy), a "merge" that returns the best parent run through the
evolution loop and a degenerate merge caught by detection (improvement).  Decision-rule
controls FAIL by construction whatever the models do (they test the decision rule, not
the pipeline; docs/gates.md): three copies of one model (diversity) and one combo (combos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.errors import HarnessError
from harness.evaluators.forge import (
    accuracy_outcomes,
    best_parent,
    cka,
    cognate_markdown,
    cognate_storage_outcomes,
    cognate_training_outcomes,
    combos_outcome,
    complementarity,
    disagreement_outcomes,
    diversity_outcome,
    evolution_markdown,
    pairs,
    parents,
    time_outcome,
)
from harness.gate import Gate
from trainers.forge.pipeline import ForgeRun

pytestmark = [pytest.mark.phase("forge"), pytest.mark.xdist_group("forge")]

SPECIALISTS = ("reasoning", "memory", "speed")
PAIRS = (("reasoning", "memory"), ("reasoning", "speed"), ("memory", "speed"))


def _digests(run: ForgeRun) -> dict[str, Any]:
    return {"model_digest": run.cache_key["key"], "data_digest": run.cache_key["data"]}


def _figures(gate: Gate, run: ForgeRun) -> list[str]:
    """Fitness curve and champion lineage PNGs beside the evidence (relative links)."""
    if gate.options.evidence_dir is None:
        return []
    from harness.report.forge_plots import plot_fitness_curve, plot_lineage

    root = Path(gate.options.evidence_dir)
    rel = ["figures/forge/fitness.png", "figures/forge/lineage.png"]
    plot_fitness_curve(run.history, root / rel[0])
    seeds = [k for k, (_p, lab) in run.lineage.items() if lab == "seed"]
    plot_lineage(
        run.lineage,
        run.champion_id,
        root / rel[1],
        names=dict(zip(seeds, parents(run), strict=False)),
    )
    return rel


@pytest.mark.gate("cognate_accuracy")
@pytest.mark.parametrize("name", SPECIALISTS)
def test_cognate_accuracy(gate: Gate, forge_run: ForgeRun, name: str) -> None:
    if name not in parents(forge_run):
        pytest.skip(f"the configured specialists are {parents(forge_run)}")
    extra: dict[str, Any] = {
        "selection_accuracy": forge_run.selection_accuracy[name],
        "training_seconds": forge_run.seconds.get(name),
        "wandb": forge_run.tracking.get("cognate"),
    }
    if name == SPECIALISTS[0]:
        extra["report_markdown"] = cognate_markdown(forge_run)
    gate.check(accuracy_outcomes(forge_run, name), subject=name, extra=extra, **_digests(forge_run))


@pytest.mark.gate("cognate_accuracy")
def test_cognate_accuracy_control_untrained(gate: Gate, forge_run: ForgeRun) -> None:
    gate.check(
        accuracy_outcomes(forge_run, "init"),
        subject="untrained-init",
        expect=Verdict.FAIL,
        **_digests(forge_run),
    )


@pytest.mark.gate("cognate_diversity")
@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_cognate_diversity(gate: Gate, forge_run: ForgeRun, a: str, b: str) -> None:
    if (a, b) not in pairs(forge_run):
        pytest.skip(f"the configured specialists are {parents(forge_run)}")
    gate.check(
        disagreement_outcomes(forge_run, a, b),
        subject=f"{a}-vs-{b}",
        extra={
            "linear_cka": cka(forge_run, a, b),
            "one_right_one_wrong": complementarity(forge_run, a, b),
            "accuracies": {a: forge_run.accuracy(a), b: forge_run.accuracy(b)},
        },
        **_digests(forge_run),
    )


@pytest.mark.gate("cognate_diversity")
def test_cognate_diversity_control_copies(gate: Gate, forge_run: ForgeRun) -> None:
    """Decision-rule control: every pair is the same model, so disagreement is 0 by construction."""
    copy_of = parents(forge_run)[0]
    outcomes = disagreement_outcomes(forge_run, copy_of, copy_of)  # any pair of the copies
    gate.check(outcomes, subject=f"three-copies-of-{copy_of}", expect=Verdict.FAIL)


def _improvement_extra(run: ForgeRun, subject: str) -> dict[str, Any]:
    bp = best_parent(run)
    return {
        "best_parent": bp,
        "parent_held_out_accuracy": {p: run.accuracy(p) for p in parents(run)},
        "subject_held_out_accuracy": run.accuracy(subject),
        "subject_selection_accuracy": run.selection_accuracy[subject],
        "parent_selection_accuracy": {p: run.selection_accuracy[p] for p in parents(run)},
    }


@pytest.mark.gate("fitness_improvement")
def test_fitness_improvement(gate: Gate, forge_run: ForgeRun) -> None:
    run = forge_run
    extra = _improvement_extra(run, "champion")
    extra.update(
        champion_path=run.champion_path,
        champion_lineage=run.lineage[run.champion_id],
        wandb=run.tracking.get("evomerge"),
        report_markdown=evolution_markdown(run, figures=_figures(gate, run)),
    )
    gate.check(
        accuracy_outcomes(run, "champion"),
        baseline=accuracy_outcomes(run, best_parent(run)),
        subject="champion",
        extra=extra,
        **_digests(run),
    )


@pytest.mark.gate("fitness_improvement")
def test_fitness_improvement_control_best_parent(gate: Gate, forge_run: ForgeRun) -> None:
    """Pipeline control: evolution with a merge that returns the best parent (no gain)."""
    run = forge_run
    extra = {**_improvement_extra(run, "control_best_parent"),
             "control": run.controls["best_parent_merge"]}  # fmt: skip
    gate.check(
        accuracy_outcomes(run, "control_best_parent"),
        baseline=accuracy_outcomes(run, best_parent(run)),
        subject="best-parent-merge",
        expect=Verdict.FAIL,
        extra=extra,
        **_digests(run),
    )


@pytest.mark.gate("fitness_improvement")
def test_fitness_improvement_control_degenerate(gate: Gate, forge_run: ForgeRun) -> None:
    run = forge_run
    ctl = run.controls["degenerate_merge"]
    # detection must catch every degenerate child (each falls back to its best parent); if it
    # does not, the control is broken — a harness error (exit 2), not a verdict about the model
    if not (ctl["children"] > 0 and ctl["fallbacks"] == ctl["children"]):
        raise HarnessError(
            f"forge degenerate-merge control: detection caught {ctl['fallbacks']} of "
            f"{ctl['children']} degenerate children (needs all, and at least one); fix "
            "trainers.merge.degenerate or the control in trainers/forge/pipeline.py"
        )
    gate.check(
        accuracy_outcomes(run, "control_degenerate"),
        baseline=accuracy_outcomes(run, best_parent(run)),
        subject="degenerate-merge",
        expect=Verdict.FAIL,
        extra={**_improvement_extra(run, "control_degenerate"), "control": ctl},
        **_digests(run),
    )


@pytest.mark.gate("population_diversity")
def test_population_diversity(gate: Gate, forge_run: ForgeRun) -> None:
    run = forge_run
    gate.check(
        diversity_outcome(run),
        subject="final-generation",
        extra={
            "measure": "mean pairwise cosine distance of task vectors θ − stem",
            "per_generation": [h["diversity"] for h in run.history],
            "injections": sum(int(h["injections"]) for h in run.history),
        },
        **_digests(run),
    )


@pytest.mark.gate("combos_used")
def test_combos_used(gate: Gate, forge_run: ForgeRun) -> None:
    gate.check(combos_outcome(forge_run), subject="evomerge", **_digests(forge_run))


@pytest.mark.gate("combos_used")
def test_combos_used_control_one_combo(gate: Gate, forge_run: ForgeRun) -> None:
    """Decision-rule control: the accepted combos cut to the first one (FAILs by construction)."""
    one = {k: v for k, v in list(forge_run.accepted_combos.items())[:1]}
    gate.check(combos_outcome(forge_run, accepted=one), subject="one-combo", expect=Verdict.FAIL)


@pytest.mark.gate("evolution_time")
def test_evolution_time(gate: Gate, forge_run: ForgeRun) -> None:
    run = forge_run
    gate.check(
        time_outcome(run),
        subject="evomerge",
        extra={
            "generations": len(run.history),
            "fitness_calls": run.fitness_calls,
            "cognate_training_seconds": run.seconds,
        },
        **_digests(run),
    )


@pytest.mark.gate("cognate_training_time")
def test_cognate_training_time(gate: Gate, forge_run: ForgeRun) -> None:
    gate.check(
        cognate_training_outcomes(forge_run),
        subject="cognate",
        extra={"seconds": forge_run.seconds, "wandb": forge_run.tracking.get("cognate")},
        **_digests(forge_run),
    )


@pytest.mark.gate("cognate_storage")
def test_cognate_storage(gate: Gate, forge_run: ForgeRun) -> None:
    outcomes, missing = cognate_storage_outcomes(forge_run)
    if missing:
        pytest.skip(f"forge Phase 1 outputs no longer on disk: {', '.join(missing)}")
    gate.check(outcomes, subject="cognate", **_digests(forge_run))
