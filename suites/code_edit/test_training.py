"""Code-edit training gates (gates/code_edit.yaml): Stage 0 SFT uplift and the SRL runs.

Subjects come from ``code_edit_trained`` (conftest.py): the base model, Stage 0
SFT, Stage 1 SFT, SFT+SRL on ``srl_seeds`` GRPO seeds and the data-matched
continued-SFT arm, trained on the train split (or reused by cache key) and judged
once on the held-out test split, greedy.  The SRL gates are claims about a
training recipe, so each is decided on the worst seed
(:func:`harness.stats.seeds.worst_run_estimate` through
:func:`harness.evaluators.circuit_breaker_seeds.worst_seed_estimate`: every seed's
own bound at α on the PASS side, at α/k on the FAIL side), with every seed's
numbers in the evidence.  Controls: the reference post-code as candidate must
PASS the uplift gates; the base model against itself must not PASS
(INCONCLUSIVE: nothing to detect); a flat reward curve must FAIL
``reward_trend``; the Stage 1 model against itself must not PASS
``srl_vs_sft_success``; and one lucky seed beside one that did nothing cannot
carry a PASS (reward: a rising and a flat curve FAIL; success: an all-success
run beside Stage 1 itself is INCONCLUSIVE).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.circuit_breaker_seeds import seed_table, worst_seed_estimate
from harness.evaluators.code_edit_models import (
    action_success_outcomes,
    chrf_difference_outcomes,
    curve_outcomes,
    exact_match_outcomes,
    pooled_runs,
)
from harness.gate import Gate
from harness.outcomes import Outcome
from harness.stats.estimate import Estimate

pytestmark = [pytest.mark.phase("code_edit"), pytest.mark.xdist_group("code_edit")]

# srl_vs_sft_success needs Docker (the validator runs ast-grep in the sandbox)
_DOCKER = pytest.mark.docker


def _stage_extra(art: Any) -> dict[str, Any]:
    return {
        "path": str(art.path),
        "cached": art.cached,
        "wall_s": art.metrics.get("wall_s"),
        "cpu_s": art.metrics.get("cpu_s"),
        "rows": art.metrics.get("rows", art.metrics.get("prompts")),
        "wandb": art.metrics.get("wandb"),
    }


def _training_extra(run: Any) -> dict[str, Any]:
    arts = run.artifacts
    stages = {name: _stage_extra(getattr(arts, name)) for name in ("stage0", "stage1")}
    stages.update({n: _stage_extra(run.srl_artifact(n)) for n in run.srl_subjects})
    stages["stage1_cont"] = _stage_extra(arts.continued_sft)
    return {
        "stages": stages,
        "base_model": str(arts.base),
        "srl_seeds": list(arts.srl_seeds),
        # what SRL trained on: the filtered SRL dataset's train split (path, digest, rows)
        "srl_data": arts.srl.metrics.get("srl_data"),
        "config": run.config.model_dump(mode="json"),
    }


def _check_worst_seed(
    gate: Gate,
    runs: dict[str, list[Outcome]],
    *,
    subject: str,
    baselines: dict[str, list[Outcome]] | None = None,
    digests: dict[str, str] | None = None,
    expect: Verdict | None = None,
    extra: dict[str, Any] | None = None,
) -> Estimate:
    """One decision over every seed in ``runs``: the worst seed's bounds decide; each
    seed's estimate, bounds and model digest go into the evidence."""
    est = worst_seed_estimate(gate, runs, baselines=baselines)
    per_seed = {k: dict(v) for k, v in est.extra["runs"].items()}
    for key in per_seed:
        if digests is not None:
            per_seed[key]["model_digest"] = digests[key]
    worst = min(per_seed, key=lambda k: per_seed[k]["value"])
    table = seed_table(est, unit=gate.spec.unit or "")
    gate.check(
        pooled_runs(runs),
        subject=subject,
        expect=expect,
        estimate=est,
        model_digest=",".join(digests[k] for k in runs) if digests is not None else None,
        extra={
            **(extra or {}),
            "k": len(runs),
            "per_seed": per_seed,
            "worst_seed": worst,
            "report_markdown": f"**{subject}**, one row per seed (worst seed decides)\n\n"
            + table
            + (f"\n\n{extra['report_markdown']}" if extra and "report_markdown" in extra else ""),
        },
    )
    return est


# ------------------------------------------------------------------ Stage 0


@pytest.mark.gate("exact_match_uplift")
def test_exact_match_uplift(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    sft = exact_match_outcomes(run.heldout_edit, run.post_code["stage0_sft"])
    base = exact_match_outcomes(run.heldout_edit, run.post_code["base"])
    gate.check(
        sft,
        baseline=base,
        subject="stage0_sft",
        model_digest=run.model_digests["stage0_sft"],
        extra={
            "sft_exact": sum(o.value for o in sft),
            "base_exact": sum(o.value for o in base),
            **_training_extra(run),
        },
    )


@pytest.mark.gate("exact_match_uplift")
def test_exact_match_uplift_control_reference(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    oracle = {r.id: r.post_code for r in run.heldout_edit}
    gate.check(
        exact_match_outcomes(run.heldout_edit, oracle),
        baseline=exact_match_outcomes(run.heldout_edit, run.post_code["base"]),
        subject="reference_post_code",
        expect=Verdict.PASS,
    )


@pytest.mark.gate("exact_match_uplift")
def test_exact_match_uplift_control_base_vs_base(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    base = exact_match_outcomes(run.heldout_edit, run.post_code["base"])
    gate.check(base, baseline=base, subject="base_vs_base", expect=Verdict.INCONCLUSIVE)


@pytest.mark.gate("chrf_uplift")
def test_chrf_uplift(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    out = chrf_difference_outcomes(
        run.heldout_edit, run.post_code["stage0_sft"], run.post_code["base"]
    )
    n = len(out)
    gate.check(
        out,
        subject="stage0_sft",
        model_digest=run.model_digests["stage0_sft"],
        extra={
            "chrf_sft_mean": sum(o.raw["chrf"] for o in out) / n,
            "chrf_base_mean": sum(o.raw["chrf_baseline"] for o in out) / n,
            "chrf_copy_pre_code_mean": sum(o.raw["chrf_copy"] for o in out) / n,
        },
    )


@pytest.mark.gate("chrf_uplift")
def test_chrf_uplift_control_reference(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    oracle = {r.id: r.post_code for r in run.heldout_edit}
    out = chrf_difference_outcomes(run.heldout_edit, oracle, run.post_code["base"])
    gate.check(out, subject="reference_post_code", expect=Verdict.PASS)


@pytest.mark.gate("chrf_uplift")
def test_chrf_uplift_control_base_vs_base(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    base = run.post_code["base"]
    out = chrf_difference_outcomes(run.heldout_edit, base, base)
    gate.check(out, subject="base_vs_base", expect=Verdict.INCONCLUSIVE)


# ------------------------------------------------------------------ SRL


def _curve_figure(gate: Gate, subject: str, curves: dict[str, list[float]]) -> str:
    """One seed's reward and accuracy curves as a PNG beside the evidence (report markdown)."""
    if gate.options.evidence_dir is None:
        return ""
    from harness.report.layer_plots import plot_training_curves

    rel = f"figures/code_edit/{subject}_curves.png"
    log = [
        {"step": s, "reward": r, "accuracy": a}
        for s, r, a in zip(curves["step"], curves["reward"], curves["accuracy"], strict=True)
    ]
    plot_training_curves(
        log,
        Path(gate.options.evidence_dir) / rel,
        keys=("reward", "accuracy"),
        title=f"SRL (GRPO) {subject}: mean reward_srl and exact-action accuracy per step",
    )
    return f"![SRL reward and accuracy curves, {subject}]({rel})"


@pytest.mark.gate("reward_trend")
def test_reward_trend(gate: Gate, code_edit_trained: Any) -> None:
    """The reward slope is a recipe claim too: every seed's curve must rise (worst seed)."""
    run = code_edit_trained
    curves = {n: run.srl_artifact(n).metrics["curves"] for n in run.srl_subjects}
    figures = "\n\n".join(_curve_figure(gate, n, c) for n, c in curves.items())
    _check_worst_seed(
        gate,
        {n: curve_outcomes(c["reward"], name=f"{n} reward") for n, c in curves.items()},
        subject="srl",
        digests=run.model_digests,
        extra={
            "accuracy_curves": {n: c["accuracy"] for n, c in curves.items()},
            "report_markdown": figures,
            **_training_extra(run),
        },
    )


@pytest.mark.gate("reward_trend")
def test_reward_trend_control_flat(gate: Gate) -> None:
    gate.check(curve_outcomes([0.5] * 30, name="flat"), subject="flat_curve", expect=Verdict.FAIL)


@pytest.mark.gate("reward_trend")
def test_reward_trend_control_one_lucky_seed(gate: Gate) -> None:
    """A clearly rising seed beside a flat one: the flat seed decides (FAIL), not the lucky."""
    rising = [0.01 * i for i in range(30)]
    runs = {
        "rising": curve_outcomes(rising, name="rising"),
        "flat": curve_outcomes([0.5] * 30, name="flat"),
    }
    _check_worst_seed(gate, runs, subject="lucky_and_flat_seeds", expect=Verdict.FAIL)


_VALIDATED: dict[str, list[Any]] = {}


def _success(run: Any, subject: str) -> list[Any]:
    """Held-out action success of ``subject`` through the sandboxed validator (every
    action subject validated in one call, so one sandbox pool serves them)."""
    if subject not in _VALIDATED:
        mod = pytest.importorskip(
            "harness.evaluators.code_edit_actions",
            reason="the sandboxed action validator is not installed in this checkout",
        )
        records = run.heldout_action
        names = ("stage1_sft", *run.srl_subjects, "stage1_cont")
        raw = [run.actions[n][r.id] for n in names for r in records]
        results = mod.validate_actions(records * len(names), raw)
        for k, n in enumerate(names):
            _VALIDATED[n] = action_success_outcomes(
                results[k * len(records) : (k + 1) * len(records)]
            )
    return _VALIDATED[subject]


def _success_extra(runs: dict[str, list[Outcome]], base: list[Outcome], name: str) -> Any:
    return {
        "success_per_seed": {k: sum(o.value for o in v) for k, v in runs.items()},
        f"{name}_success": sum(o.value for o in base),
        "n_heldout": len(base),
    }


@_DOCKER
@pytest.mark.gate("srl_vs_sft_success")
def test_srl_vs_sft_success(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    sft = _success(run, "stage1_sft")
    runs = {n: _success(run, n) for n in run.srl_subjects}
    _check_worst_seed(
        gate,
        runs,
        subject="srl",
        baselines=dict.fromkeys(runs, sft),
        digests=run.model_digests,
        extra={
            **_success_extra(runs, sft, "sft"),
            "baseline_digest": run.model_digests["stage1_sft"],
        },
    )


@_DOCKER
@pytest.mark.gate("srl_vs_sft_success")
def test_srl_vs_sft_success_control_self(gate: Gate, code_edit_trained: Any) -> None:
    sft = _success(code_edit_trained, "stage1_sft")
    gate.check(sft, baseline=sft, subject="sft_vs_sft", expect=Verdict.INCONCLUSIVE)


@_DOCKER
@pytest.mark.gate("srl_vs_sft_success")
def test_srl_vs_sft_success_control_one_lucky_seed(gate: Gate, code_edit_trained: Any) -> None:
    """One seed that solves every held-out row beside one that is Stage 1 itself: the lucky
    seed alone would PASS, the worst seed (no change) keeps the verdict off PASS."""
    sft = _success(code_edit_trained, "stage1_sft")
    lucky = [replace(o, value=1.0) for o in sft]
    runs = {"lucky": lucky, "unchanged": sft}
    _check_worst_seed(
        gate,
        runs,
        subject="lucky_and_unchanged_seeds",
        baselines=dict.fromkeys(runs, sft),
        expect=Verdict.INCONCLUSIVE,
    )


@_DOCKER
@pytest.mark.gate("srl_vs_continued_sft_success")
def test_srl_vs_continued_sft_success(gate: Gate, code_edit_trained: Any) -> None:
    """The data-matched ablation: every SRL seed against Stage 1 continued with plain SFT
    on the same verified SRL steps (one seed of that arm)."""
    run = code_edit_trained
    cont = _success(run, "stage1_cont")
    runs = {n: _success(run, n) for n in run.srl_subjects}
    _check_worst_seed(
        gate,
        runs,
        subject="srl",
        baselines=dict.fromkeys(runs, cont),
        digests=run.model_digests,
        extra={
            **_success_extra(runs, cont, "continued_sft"),
            "stage1_sft_success": sum(o.value for o in _success(run, "stage1_sft")),
            "baseline_digest": run.model_digests["stage1_cont"],
            "continued_sft": _stage_extra(run.artifacts.continued_sft),
            "continued_sft_config": run.config.continued_sft.model_dump(mode="json"),
        },
    )


@_DOCKER
@pytest.mark.gate("srl_vs_continued_sft_success")
def test_srl_vs_continued_sft_success_control_self(gate: Gate, code_edit_trained: Any) -> None:
    cont = _success(code_edit_trained, "stage1_cont")
    gate.check(cont, baseline=cont, subject="cont_vs_cont", expect=Verdict.INCONCLUSIVE)
