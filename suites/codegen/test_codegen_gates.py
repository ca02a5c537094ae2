"""Code-generation phase gates (brief note 001): thin tests over one run per subject.

Each test slices the subject's run (see ``conftest.py``) into the Outcomes its
gate needs and calls ``gate.check``; the plugin records evidence and turns the
decision into the pytest outcome.  Controls (oracle, mutant) carry the
expected verdict, so a control test passes exactly when the gate behaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from harness.decision import Decision, decide
from harness.errors import HarnessError
from harness.evaluators.codegen import (
    LatencyRun,
    SubjectRun,
    latency_plan,
    measure_exec_latency,
    measure_request_latency,
    sequential_value,
    tier_ladder,
    two_look_quantile,
)
from harness.evaluators.codegen_demo import DemoItem, demo_plan, measure_demo_latency
from harness.evaluators.humaneval import build_program
from harness.gate import Gate
from harness.machine_load import LoadReading
from harness.outcomes import Outcome
from harness.stats.estimate import Estimate
from sandbox.base import Program

pytestmark = [pytest.mark.phase("codegen")]

MIN_LATENCY_REQUESTS = 72  # a two-sided 95 % p95 interval needs n ≥ 72 (0.95⁷² < 0.025)


def _skip_without_claim(subject: SubjectRun, gate: Gate) -> None:
    if subject.is_control and subject.expect(gate.id) is None:
        if gate.spec.metric != "quantile":
            why = "its value depends on which seeded faults the hidden tests happen to catch"
        elif subject.name == "oracle":
            why = (
                "sandbox latency with many programs in flight depends on the machine's cores "
                "and load, which is not ground truth"
            )
        else:
            why = (
                "a control generates nothing, so its latency is sandbox execution time, which "
                "says nothing about seeded faults; the oracle control checks the latency gates"
            )
        gate.no_claim(
            f"the {subject.name} control makes no claim on '{gate.id}': {why}", subject=subject.name
        )


def _no_claim_if_overloaded(gate: Gate, subject: SubjectRun, lat: LatencyRun) -> None:
    """A control's latency verdict is ground truth only on a machine with spare CPU."""
    if not subject.is_control or lat.meta.get("machine_load") is None:
        return
    why = LoadReading.model_validate(lat.meta["machine_load"]).overloaded()
    if why:
        gate.no_claim(
            f"the {subject.name} control's expected latency verdict assumes a machine with "
            f"spare CPU, and this one was overloaded while timing ({why}); rerun on a quieter "
            "machine to check this control",
            subject=subject.name,
        )


def _skip_replayed_latency(subject: SubjectRun) -> None:
    if subject.lane == "replay":
        pytest.skip(
            "replay lane: a replayed generation was not generated here, so it has no latency "
            "to measure; latency gates are decided in the real lane only"
        )


def _shard_tasks(gate: Gate, subject: SubjectRun) -> None:
    """Tell the gate the task universe; under ``--shard`` the run evaluated only its slice.

    The subject's run was computed on this shard's tasks (``conftest._shard_slice``);
    ``gate.shard_items`` records the full ordered task list so ``harness merge``
    restores the unsharded order.  A no-op without ``--shard``.
    """
    owned = gate.shard_items([t.task_id for t in subject.tasks], key=str)
    ran = [t.task_id for t in subject.run.tasks]
    if ran != owned[: len(ran)]:
        raise HarnessError(
            f"codegen {subject.name}: the run evaluated tasks {ran[:3]}… but this shard owns "
            f"{owned[:3]}…; the run cache does not match the shard"
        )


def _sequential_slice(subject: SubjectRun, gate: Gate) -> tuple[list[Outcome], Any, dict[str, Any]]:
    """Per-task outcomes and the anytime-valid estimate at the point this gate was decided."""
    monitor = gate.sequential(lower=0.0, upper=1.0)
    outcomes: list[Outcome] = []
    for task in subject.run.tasks:
        value = sequential_value(gate.spec, task)
        if value is None:
            continue  # a first-stage-only task: no information on this gate
        outcomes.append(
            Outcome(
                item_id=task.task_id,
                value=value,
                cluster=task.task_id,
                raw={"first_pass": task.first_pass, "samples": len(task.samples)},
            )
        )
        if monitor.update(value):
            break
    info = {"sequential_tasks_used": len(outcomes), "sequential_decided": monitor.decided}
    return outcomes, monitor.estimate(), info


@pytest.mark.gate("pass_at_1", "pass_at_4", "pass_at_16")
def test_pass_at_k(gate: Gate, codegen_subject: SubjectRun) -> None:
    """pass@k over every sample of every task (unbiased estimator, task-clustered CI)."""
    _skip_without_claim(codegen_subject, gate)
    run = codegen_subject.run
    extra: dict[str, Any] = {}
    if gate.id == "pass_at_1":
        extra["tier_ladder"] = _ladder(codegen_subject, gate)
    if run.config.sequential:
        outcomes, estimate, info = _sequential_slice(codegen_subject, gate)
        gate.check(
            outcomes,
            estimate=estimate,
            raw_outputs=run.task_rows(),
            **codegen_subject.check_kwargs(gate.id, **extra, **info),
        )
        return
    k = int(gate.spec.params["k"])
    _shard_tasks(gate, codegen_subject)
    gate.check(
        run.sample_outcomes(min_samples=k),
        raw_outputs=run.raw_rows(),
        **codegen_subject.check_kwargs(gate.id, **extra),
    )


@pytest.mark.gate("uplift_16_vs_1")
def test_uplift(gate: Gate, codegen_subject: SubjectRun) -> None:
    """pass@16 − pass@1 paired by task; the lower bound must clear 8 pp (hence also 0)."""
    run = codegen_subject.run
    if run.config.sequential:
        outcomes, estimate, info = _sequential_slice(codegen_subject, gate)
        gate.check(
            outcomes,
            estimate=estimate,
            raw_outputs=run.task_rows(),
            **codegen_subject.check_kwargs(gate.id, **info),
        )
        return
    _shard_tasks(gate, codegen_subject)
    gate.check(
        run.sample_outcomes(min_samples=int(gate.spec.params["k_hi"])),
        raw_outputs=run.task_rows(),
        **codegen_subject.check_kwargs(gate.id),
    )


@pytest.mark.gate("best_of_16")
def test_best_of_n(gate: Gate, codegen_subject: SubjectRun) -> None:
    """The candidate chosen on public examples (executed in the sandbox) must pass hidden tests."""
    _skip_without_claim(codegen_subject, gate)
    run = codegen_subject.run
    if run.config.sequential:
        pytest.skip(
            "best-of-16 needs the full candidate pool; the sequential option stops a task at "
            "its first hidden-test pass, which would leak the hidden tests into selection"
        )
    _shard_tasks(gate, codegen_subject)
    gate.check(
        run.best_of_n_outcomes(),
        raw_outputs=run.task_rows(),
        **codegen_subject.check_kwargs(
            gate.id,
            selection="highest public-example score in the sandbox (loads, then >>> examples "
            "passed); ties → earliest sample; hidden tests never consulted",
        ),
    )


@pytest.mark.gate("latency_p95_normal", "latency_p95_high", "latency_p95_stress")
def test_request_latency(gate: Gate, codegen_subject: SubjectRun) -> None:
    """p95 per-request latency with 1 / 8 / 32 requests in flight (real measurements only).

    Measured in at most two looks (:func:`two_look_quantile`): a subject already
    clearly too slow after the first waves is decided FAIL without sending
    the rest.  Controls generate nothing, so their "request" is the sandbox
    execution of a canonical check program (labelled in the evidence).
    """
    _skip_without_claim(codegen_subject, gate)
    _skip_replayed_latency(codegen_subject)
    q = float(gate.spec.params["q"])
    concurrency = int(gate.spec.params["concurrency"])
    cfg = codegen_subject.run.config
    generator = codegen_subject.generator

    def measure(start: int, count: int) -> LatencyRun:
        if generator is not None:
            return measure_request_latency(
                generator,
                codegen_subject.tasks,
                scenario=gate.id,
                concurrency=concurrency,
                min_requests=count,
                config=cfg,
                start=start,
            )
        programs = [Program(build_program(t, t.canonical_solution)) for t in codegen_subject.tasks]
        return measure_exec_latency(
            codegen_subject.sandbox,
            programs,
            scenario=gate.id,
            concurrency=concurrency,
            min_requests=count,
            config=cfg,
            start=start,
        )

    lat, estimate, looks = two_look_quantile(
        measure,
        q=q,
        threshold=gate.spec.tiers.primary,
        alpha_one_sided=gate.alpha_decision,
        concurrency=concurrency,
        minimum=MIN_LATENCY_REQUESTS,
    )
    _no_claim_if_overloaded(gate, codegen_subject, lat)
    gate.check(
        lat.outcomes(),
        estimate=estimate,
        raw_outputs=[{"request_id": rid, "latency_s": s} for rid, s in lat.latencies],
        **codegen_subject.check_kwargs(
            gate.id,
            latency={**_latency_note(lat, int(looks["full_n"]), gate), **looks},
        ),
    )


def _latency_note(lat: LatencyRun, bound_n: int, gate: Gate) -> dict[str, Any]:
    waves, needed = len(lat.latencies) // lat.concurrency, bound_n // lat.concurrency
    return {
        "scenario": lat.scenario,
        "concurrency": lat.concurrency,
        "requests": len(lat.latencies),
        "waves": waves,
        "measured": lat.source,
        "n_for_upper_bound": needed,
        "n_note": (
            f"n counts waves ({lat.concurrency} request(s) served together share one wall "
            f"time: one observation); an upper bound on "
            f"p{round(100 * float(gate.spec.params['q']))} at one-sided "
            f"α={gate.alpha_decision:.4g} (decided at the last look only; a FAIL's lower bound "
            f"is split α/2 over the two looks) needs ≥ {needed} waves ({bound_n} requests); "
            f"{waves} waves ({len(lat.latencies)} requests) were measured"
        ),
        **lat.meta,
    }


@pytest.mark.gate("demo_e2e_p95")
def test_demo_budget(gate: Gate, codegen_subject: SubjectRun) -> None:
    """p95 seconds per task of the live demo flow: progressive sampling → sandbox → selection.

    Timed on its own flows, one task at a time, on the uncached generator
    (:mod:`harness.evaluators.codegen_demo`): every run — warm caches included —
    decides the gate, and no cached answer is ever timed.  Tasks in a seeded,
    outcome-blind order; at most two looks (a clearly slow subject is decided
    FAIL after 16 flows, a PASS needs the 102 the upper bound needs at α/9).
    """
    _skip_without_claim(codegen_subject, gate)
    _skip_replayed_latency(codegen_subject)
    lat, estimate, looks, flows = _time_demo_flows(gate, codegen_subject)
    _no_claim_if_overloaded(gate, codegen_subject, lat)
    cfg = codegen_subject.run.config
    gate.check(
        lat.outcomes(),
        **({} if estimate is None else {"estimate": estimate}),
        raw_outputs=flows,
        **codegen_subject.check_kwargs(
            gate.id,
            latency={
                **_latency_note(lat, int(looks["full_n"]), gate),
                **looks,
                "task_order": f"seeded (seed {cfg.seed}), outcome-blind; {looks['full_n']} "
                f"planned flows over {len(codegen_subject.tasks)} tasks",
                "accuracy_run_cached_tasks": len(codegen_subject.run.cached_tasks()),
                "cost_note": "the demo flows are timed in addition to the accuracy run, "
                "whose cached or batched timings are never used",
            },
        ),
    )


def _time_demo_flows(
    gate: Gate, subject: SubjectRun
) -> tuple[LatencyRun, Estimate | None, dict[str, Any], list[dict[str, Any]]]:
    """Time the planned demo flows: two looks, or under ``--shard`` this shard's flows."""
    demo = subject.demo_subject
    if demo is None:
        raise HarnessError(f"codegen {subject.name}: no subject to time the demo flow")
    q, cfg = float(gate.spec.params["q"]), subject.run.config
    _, n_full = latency_plan(
        q=q, alpha_one_sided=gate.alpha_decision, concurrency=1, minimum=MIN_LATENCY_REQUESTS
    )
    plan = demo_plan(subject.tasks, n=n_full, seed=cfg.seed)
    flows: list[dict[str, Any]] = []

    def measure_items(items: Sequence[DemoItem]) -> LatencyRun:
        lat = measure_demo_latency(demo, items, subject.sandbox, cfg)
        flows.extend(lat.meta.pop("flows"))
        return lat

    if gate.options.shard is not None:
        # each shard times its own slice of the fixed plan (one look); `harness merge`
        # decides the union, which is the whole plan
        owned = gate.shard_items(plan, key=lambda item: item.item_id)
        return measure_items(owned), None, {"looks": 1, "full_n": n_full, "sharded": True}, flows
    lat, estimate, looks = two_look_quantile(
        lambda start, count: measure_items(plan[start : start + count]),
        q=q,
        threshold=float(gate.spec.tiers.primary),
        alpha_one_sided=gate.alpha_decision,
        concurrency=1,
        minimum=MIN_LATENCY_REQUESTS,
    )
    return lat, estimate, looks, flows


@pytest.mark.gate("contamination")
def test_contamination(
    gate: Gate, codegen_subject: SubjectRun, request: pytest.FixtureRequest
) -> None:
    """HumanEval tasks sharing a 13-gram with the model's training corpus (recomputed here)."""
    if codegen_subject.is_control:
        gate.no_claim(
            f"the {codegen_subject.name} control is not trained; no corpus to check",
            subject=codegen_subject.name,
        )
    report, corpus = request.getfixturevalue("model_contamination")
    if report is None:
        pytest.skip(corpus)
    outcomes = [
        Outcome(
            item_id=item.item_id,
            value=float(item.contaminated),
            raw={"ngrams": item.ngrams, "matched": item.matched, "example": item.example},
        )
        for item in report.items
    ]
    gate.check(
        outcomes,
        raw_outputs=[item.model_dump(mode="json") for item in report.items],
        **codegen_subject.check_kwargs(gate.id, corpus=corpus),
    )


def _ladder(subject: SubjectRun, gate: Gate) -> dict[str, Any]:
    """PRIMARY / FALLBACK / UPLIFT / FAILED from pass@1 and uplift decisions on this run."""
    phase = gate.phase
    uplift_gate = Gate(phase, phase.gate("uplift_16_vs_1"), options=gate.options)
    run = subject.run
    decisions: dict[str, Decision] = {}
    for g in (gate, uplift_gate):
        if run.config.sequential:
            _, estimate, _ = _sequential_slice(subject, g)
            decisions[g.id] = decide(g.spec, estimate, alpha=g.alpha_decision)
        else:
            k = int(g.spec.params.get("k", g.spec.params.get("k_hi", 1)))
            decisions[g.id] = g.evaluate(run.sample_outcomes(min_samples=k))[1]
    tier = tier_ladder(decisions["pass_at_1"], decisions["uplift_16_vs_1"])
    return {
        "tier": str(tier),
        "pass_at_1": {
            "verdict": str(decisions["pass_at_1"].verdict),
            "tier": decisions["pass_at_1"].tier,
        },
        "uplift_16_vs_1": {"verdict": str(decisions["uplift_16_vs_1"].verdict)},
        "rule": "PRIMARY: pass@1 primary tier met on the bound; FALLBACK: fallback tier met; "
        "UPLIFT: only the uplift gate passes; FAILED otherwise",
    }
