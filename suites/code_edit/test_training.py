"""Code-edit training gates (gates/code_edit.yaml): Stage 0 SFT uplift and the SRL run.

Subjects come from ``code_edit_trained`` (conftest.py): the base model, Stage 0
SFT, Stage 1 SFT and SFT+SRL, trained on the train split (or reused by cache
key) and judged once on the held-out test split, greedy.  Controls: the
reference post-code as candidate must PASS the uplift gates; the base model
against itself must not PASS (INCONCLUSIVE: nothing to detect); a flat reward
curve must FAIL ``reward_trend``; the Stage 1 model against itself must not
PASS ``srl_vs_sft_success``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.decision import Verdict
from harness.evaluators.code_edit_models import (
    action_success_outcomes,
    chrf_difference_outcomes,
    curve_outcomes,
    exact_match_outcomes,
)
from harness.gate import Gate

pytestmark = [pytest.mark.phase("code_edit"), pytest.mark.xdist_group("code_edit")]

# srl_vs_sft_success needs Docker (the validator runs ast-grep in the sandbox)
_DOCKER = pytest.mark.docker


def _training_extra(run: Any) -> dict[str, Any]:
    arts = run.artifacts
    return {
        "stages": {
            name: {
                "path": str(getattr(arts, name).path),
                "cached": getattr(arts, name).cached,
                "wall_s": getattr(arts, name).metrics.get("wall_s"),
                "cpu_s": getattr(arts, name).metrics.get("cpu_s"),
                "rows": getattr(arts, name).metrics.get(
                    "rows", getattr(arts, name).metrics.get("prompts")
                ),
                "wandb": getattr(arts, name).metrics.get("wandb"),
            }
            for name in ("stage0", "stage1", "srl")
        },
        "base_model": str(arts.base),
        # what SRL trained on: the filtered SRL dataset's train split (path, digest, rows)
        "srl_data": arts.srl.metrics.get("srl_data"),
        "config": run.config.model_dump(mode="json"),
    }


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


def _curve_figure(gate: Gate, curves: dict[str, list[float]]) -> str:
    """Reward and accuracy curves as a PNG beside the evidence (markdown for the report)."""
    if gate.options.evidence_dir is None:
        return ""
    from harness.report.layer_plots import plot_training_curves

    rel = "figures/code_edit/srl_curves.png"
    log = [
        {"step": s, "reward": r, "accuracy": a}
        for s, r, a in zip(curves["step"], curves["reward"], curves["accuracy"], strict=True)
    ]
    plot_training_curves(
        log,
        Path(gate.options.evidence_dir) / rel,
        keys=("reward", "accuracy"),
        title="SRL (GRPO): mean reward_srl and exact-action accuracy per step",
    )
    return f"![SRL reward and accuracy curves]({rel})"


@pytest.mark.gate("reward_trend")
def test_reward_trend(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    curves = run.artifacts.srl.metrics["curves"]
    gate.check(
        curve_outcomes(curves["reward"], name="srl reward"),
        subject="srl",
        model_digest=run.model_digests["srl"],
        extra={
            "accuracy_curve": curves["accuracy"],
            "report_markdown": _curve_figure(gate, curves),
            **_training_extra(run),
        },
    )


@pytest.mark.gate("reward_trend")
def test_reward_trend_control_flat(gate: Gate) -> None:
    gate.check(curve_outcomes([0.5] * 30, name="flat"), subject="flat_curve", expect=Verdict.FAIL)


_VALIDATED: dict[str, list[Any]] = {}


def _success(run: Any, subject: str) -> list[Any]:
    """Held-out action success of ``subject`` through the sandboxed validator (both SRL
    subjects validated in one call, so one sandbox pool serves them)."""
    if subject not in _VALIDATED:
        mod = pytest.importorskip(
            "harness.evaluators.code_edit_actions",
            reason="the sandboxed action validator is not installed in this checkout",
        )
        records = run.heldout_action
        names = ("stage1_sft", "srl")
        raw = [run.actions[n][r.id] for n in names for r in records]
        results = mod.validate_actions(records * len(names), raw)
        for k, n in enumerate(names):
            _VALIDATED[n] = action_success_outcomes(
                results[k * len(records) : (k + 1) * len(records)]
            )
    return _VALIDATED[subject]


@_DOCKER
@pytest.mark.gate("srl_vs_sft_success")
def test_srl_vs_sft_success(gate: Gate, code_edit_trained: Any) -> None:
    run = code_edit_trained
    srl, sft = _success(run, "srl"), _success(run, "stage1_sft")
    gate.check(
        srl,
        baseline=sft,
        subject="srl",
        model_digest=run.model_digests["srl"],
        extra={
            "srl_success": sum(o.value for o in srl),
            "sft_success": sum(o.value for o in sft),
            "n_heldout": len(srl),
        },
    )


@_DOCKER
@pytest.mark.gate("srl_vs_sft_success")
def test_srl_vs_sft_success_control_self(gate: Gate, code_edit_trained: Any) -> None:
    sft = _success(code_edit_trained, "stage1_sft")
    gate.check(sft, baseline=sft, subject="sft_vs_sft", expect=Verdict.INCONCLUSIVE)
