"""Log the circuit-breaker evaluation to W&B beside the training curves (offline by default).

The trainer writes each arm run's training curves to its own W&B run
(``trainers.tracking.RunTracker``, ``PhaseRun.training_runs``).  Those runs are
closed before anything is evaluated, and the trainer must not know about
evaluation (data flows one way), so the evaluation goes to one **linked eval
run** per phase run, written from the suite side after its gates decided:

* ``config``: the phase digest, the seeds, and every training run it evaluates
  (``training_runs``: run key → W&B id, name, directory) — the link;
* ``summary`` (and one history row of the numeric values): per run key
  (``baseline``, ``cb-seed0`` …) ``eval/<run>/<metric>`` for correct behaviour,
  no-tool-call rate, ASR (all attacks and the held-out families), relative ASR
  reduction, benign success, capability retention, and the coherence flags
  (count and item ids); per decided gate and subject ``gate/<gate>/<subject>/…``
  the verdict, estimate, one-sided bounds, threshold, α and n, and per seed the
  estimate and bounds the worst-run rule used.

Raw model outputs are not copied into W&B (they are hostile text and already
in the evidence); only numbers, verdicts and item ids.

W&B stays optional: without the package, or with ``WANDB_MODE=disabled``, this
is a no-op that says why once per process (``logging``), and a W&B error
(start-up or while writing) is logged, never raised — the gates' evidence does
not depend on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.evidence import EvidenceRecord
from trainers.circuit_breaker.data import HELDOUT_FAMILY_GROUPS
from trainers.circuit_breaker.pipeline import ARMS, PhaseRun

__all__ = ["eval_run_name", "gate_summary", "log_phase_evaluation", "run_metrics"]

PHASE = "circuit_breaker"
_log = logging.getLogger(__name__)
_said: set[str] = set()  # reasons already logged in this process (W&B off: say it once)


def eval_run_name(run: PhaseRun) -> str:
    """The eval run's W&B name: the phase result it evaluates (``cb-phase-<digest[:12]>``)."""
    return f"{PHASE}-eval-{run.config_digest[:12]}"


def _rate(rows: Sequence[Mapping[str, Any]], flag: str) -> float:
    return sum(bool(r[flag]) for r in rows) / len(rows) if rows else float("nan")


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _one_run(rows: Sequence[Mapping[str, Any]], base: Mapping[str, float]) -> dict[str, Any]:
    attacks = [r for r in rows if r["kind"] == "attack"]
    held = [r for r in attacks if r.get("group") in HELDOUT_FAMILY_GROUPS]
    benign = [r for r in rows if r["kind"] == "benign"]
    flagged = [str(r["item_id"]) for r in rows if not r["coherent"]]
    asr, benign_ok = _rate(attacks, "harmful"), _rate(benign, "correct")
    return {
        "correct_behavior_rate": _rate(attacks, "correct"),
        "no_tool_call_rate": _rate(attacks, "no_tool_call"),
        "asr": asr,
        "asr_exact": _rate(attacks, "harmful_exact"),
        "asr_heldout_families": _rate(held, "harmful"),
        "correct_heldout_families": _rate(held, "correct"),
        "asr_relative_reduction": 1.0 - _ratio(asr, base["asr"]),
        "benign_success": benign_ok,
        "capability_retention": _ratio(benign_ok, base["benign_success"]),
        "incoherent_outputs": len(flagged),
        "incoherent_items": flagged,
        "n_attacks": len(attacks),
        "n_benign": len(benign),
    }


def run_metrics(run: PhaseRun) -> dict[str, dict[str, Any]]:
    """Per run key (the baseline, then every seeded run of every arm): its eval metrics."""
    rows = run.results["baseline"]
    base = {
        "asr": _rate([r for r in rows if r["kind"] == "attack"], "harmful"),
        "benign_success": _rate([r for r in rows if r["kind"] == "benign"], "correct"),
    }
    keys = [k for arm in ARMS for k in run.runs(arm)]
    return {key: _one_run(run.results[key], base) for key in keys}


def _finite(value: Any) -> Any:
    """W&B's JSON has no NaN/inf: write them as strings (as the evidence does)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def gate_summary(records: Iterable[EvidenceRecord]) -> dict[str, Any]:
    """Flat ``gate/<gate>/<subject>/<field>`` values of the decided gates (this phase only)."""
    out: dict[str, Any] = {}
    for rec in records:
        if rec.phase != PHASE:
            continue
        est, dec = rec.estimate, rec.decision
        prefix = f"gate/{rec.gate}/{rec.subject}"
        values: dict[str, Any] = {
            "verdict": dec["verdict"],
            "tier": dec["tier"],
            "threshold": dec["threshold"],
            "alpha": rec.alpha_decision,
            "estimate": est.get("value"),
            "lo": est.get("lo"),
            "hi": est.get("hi"),
            "n": est.get("n"),
            "expect": None if rec.expect is None else str(rec.expect),
        }
        for seed_key, row in (rec.extra.get("per_seed") or {}).items():
            if isinstance(row, Mapping):  # worst-run gates; count gates store a number
                for field in ("value", "lo", "hi", "lo_fail_side", "hi_fail_side"):
                    values[f"{seed_key}/{field}"] = row.get(field)
            else:
                values[f"{seed_key}/value"] = row
        out.update({f"{prefix}/{k}": _finite(v) for k, v in values.items() if v is not None})
    return out


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        _log.warning(message)


def log_phase_evaluation(
    run: PhaseRun,
    records: Sequence[EvidenceRecord],
    *,
    mode: str | None = None,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Write the eval run (module docs); its ``RunTracker.record()`` (``mode: inactive`` and
    a ``reason`` when W&B is off or failed to start)."""
    from trainers.tracking import RunTracker

    metrics = run_metrics(run)
    summary: dict[str, Any] = {
        f"eval/{key}/{name}": _finite(value)
        for key, values in metrics.items()
        for name, value in values.items()
    }
    summary.update(gate_summary(records))
    config = {
        "phase": PHASE,
        "job": "eval",
        "phase_digest": run.config_digest,
        "arm_seeds": list(run.arm_seeds),
        "training_runs": dict(run.training_runs),
    }
    try:
        tracker = RunTracker(
            name=eval_run_name(run),
            config=config,
            group=f"{PHASE}-{run.config_digest[:12]}",
            mode=mode,
            directory=directory,
        )
    except HarnessError as exc:  # W&B could not start: the gates stand without it
        _say_once(f"circuit-breaker eval metrics not logged to W&B: {exc}")
        return {"mode": "inactive", "name": eval_run_name(run), "reason": str(exc)}
    if not tracker.active:
        _say_once(f"circuit-breaker eval metrics not logged to W&B: {tracker.reason}")
        return tracker.record()
    try:
        with tracker:
            tracker.log(0, {k: v for k, v in summary.items() if _is_number(v)})
            tracker.summary(summary)
    except Exception as exc:  # W&B's own error types: a logging hiccup must not stop the run
        _log.error("circuit-breaker eval run %s not completed: %r", tracker.run_dir, exc)
        return {**tracker.record(), "reason": f"logging failed: {exc!r}"}
    _log.info("circuit-breaker eval metrics logged to W&B run %s", tracker.run_dir)
    return tracker.record()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
