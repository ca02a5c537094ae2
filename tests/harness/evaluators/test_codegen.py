"""Code-gen evaluator (harness/evaluators/codegen.py) on real sandboxes and a real tiny model.

The reduced code-gen run of the default test suite lives here: the oracle
and mutant controls go through the real LocalSandbox (and DockerSandbox under
the ``docker`` marker), and their pass@1 / uplift gates are decided by the
real estimators — the oracle must PASS pass@1 and the mutant must FAIL it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness.backends.base import GenerationRequest
from harness.decision import Verdict, decide
from harness.errors import BackendError
from harness.evaluators.codegen import (
    CodegenConfig,
    CodegenRun,
    ControlSubject,
    ExecMemo,
    ModelSubject,
    Tier,
    measure_exec_latency,
    measure_request_latency,
    run_codegen,
    sequential_value,
    shared_run,
    tier_ladder,
    upper_bound_requests,
)
from harness.evaluators.controls import MutantControl, OracleControl
from harness.evaluators.humaneval import build_program, load_tasks
from harness.gate import Gate, GateOptions
from harness.machine_load import LoadReading
from harness.spec import load_phase
from sandbox.base import Program, Sandbox
from sandbox.local import LocalSandbox

PHASE = load_phase(Path(__file__).parents[3] / "gates" / "codegen.yaml")
TASKS = load_tasks()
DIGEST = "sha256:test"


@pytest.fixture(scope="module")
def local_sandbox() -> Iterator[Sandbox]:
    box = LocalSandbox()
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="module")
def oracle_run(local_sandbox: Sandbox) -> CodegenRun:
    """100 tasks: the oracle's uplift FAIL needs the betting interval's upper bound below 0.08.

    With every per-task uplift 0 that bound is 0.075 at n = 90 and 0.068 at n = 100 (two-sided
    level 2α/10), so 100 tasks decide it with room; 72 tasks (enough for the old task
    bootstrap) leave it INCONCLUSIVE.
    """
    subject = ControlSubject(OracleControl(), TASKS[:100])
    return run_codegen(subject, TASKS[:100], local_sandbox, CodegenConfig(), data_digest=DIGEST)


@pytest.fixture(scope="module")
def mutant_run(local_sandbox: Sandbox) -> CodegenRun:
    """All 164 tasks: the mutant's pass@1 FAIL is a claim about the full benchmark."""
    subject = ControlSubject(MutantControl(seed=0), TASKS)
    return run_codegen(subject, TASKS, local_sandbox, CodegenConfig(), data_digest=DIGEST)


def _decide(gate_id: str, run: CodegenRun) -> Verdict:
    gate = Gate(PHASE, PHASE.gate(gate_id), options=GateOptions())
    outcomes = run.best_of_n_outcomes() if gate_id == "best_of_16" else run.sample_outcomes()
    return gate.evaluate(outcomes)[1].verdict


def test_progressive_stages_follow_the_k_ladder() -> None:
    assert CodegenConfig().stages() == [(0, 1), (1, 3), (4, 12)]
    assert CodegenConfig(ks=(2, 5)).stages() == [(0, 2), (2, 3)]
    with pytest.raises(Exception, match="strictly increasing"):
        CodegenConfig(ks=(4, 1))


def test_oracle_passes_every_accuracy_gate_except_uplift(oracle_run: CodegenRun) -> None:
    assert oracle_run.samples_drawn == 100 * 16
    assert all(s.passed and s.status == "passed" for t in oracle_run.tasks for s in t.samples)
    for gate_id in ("pass_at_1", "pass_at_4", "pass_at_16", "best_of_16"):
        assert _decide(gate_id, oracle_run) is Verdict.PASS, gate_id
    assert _decide("uplift_16_vs_1", oracle_run) is Verdict.FAIL  # no headroom at pass@1 = 1
    # 16 identical canonical programs per task execute once (plus public probes)
    assert oracle_run.meta["executions"] < oracle_run.meta["executions_requested"] / 8


def test_mutant_fails_pass_at_1_and_passes_uplift(mutant_run: CodegenRun) -> None:
    passed = [s.passed for t in mutant_run.tasks for s in t.samples]
    assert 0.25 < float(np.mean(passed)) < 0.42  # designed ≈ 0.2 + 0.8·0.15 = 0.32
    assert _decide("pass_at_1", mutant_run) is Verdict.FAIL
    assert _decide("pass_at_16", mutant_run) is Verdict.PASS
    assert _decide("uplift_16_vs_1", mutant_run) is Verdict.PASS
    statuses = {s.status for t in mutant_run.tasks for s in t.samples}
    assert {"passed", "failed"} <= statuses


def test_best_of_n_selects_on_public_examples_only(mutant_run: CodegenRun) -> None:
    for task in mutant_run.tasks:
        chosen = task.samples[task.selected]
        best = max(s.public_score for s in task.samples)
        assert chosen.public_score == best
        assert all(s.public_score != best for s in task.samples[: task.selected])
    bo = np.mean([o.value for o in mutant_run.best_of_n_outcomes()])
    first = np.mean([o.value for o in mutant_run.first_k_outcomes(1)])
    assert bo > first  # executing candidates on public examples does help


def test_outcome_views_are_consistent(oracle_run: CodegenRun) -> None:
    samples = oracle_run.sample_outcomes()
    assert {o.cluster for o in samples} == {t.task_id for t in TASKS[:100]}
    assert all(o.value == 1.0 for o in oracle_run.first_k_outcomes(4))
    rows = oracle_run.raw_rows()
    assert len(rows) == 100 * 16 and {"raw_text", "completion", "status", "selected"} <= set(
        rows[0]
    )
    assert oracle_run.task_rows()[0]["first_pass"] == 0


def test_sequential_option_saves_samples_without_changing_pass_at_k(
    local_sandbox: Sandbox, mutant_run: CodegenRun
) -> None:
    tasks = TASKS[:32]
    subject = ControlSubject(MutantControl(seed=0), TASKS)  # same broken set as the full run
    run = run_codegen(
        subject, tasks, local_sandbox, CodegenConfig(sequential=True), data_digest=DIGEST
    )
    full = {t.task_id: t for t in mutant_run.tasks}
    for task in run.tasks:
        for k in (1, 4, 16):
            assert task.pass_within(k) == full[task.task_id].pass_within(k), (task.task_id, k)
    assert run.samples_saved > 0.25 * run.samples_budget  # ≈ 42 % for this mutant
    assert run.accounting()["samples_saved"] == run.samples_saved


def test_sequential_values_match_the_gate_metrics(mutant_run: CodegenRun) -> None:
    task = next(t for t in mutant_run.tasks if t.first_pass not in (None, 0))
    assert sequential_value(PHASE.gate("pass_at_1"), task) == 0.0
    assert sequential_value(PHASE.gate("pass_at_16"), task) == 1.0
    assert sequential_value(PHASE.gate("uplift_16_vs_1"), task) == 1.0
    assert sequential_value(PHASE.gate("best_of_16"), task) is None


def test_shared_run_computes_once_and_round_trips(tmp_path: Path, oracle_run: CodegenRun) -> None:
    calls = []

    def compute() -> CodegenRun:
        calls.append(1)
        return oracle_run

    path = tmp_path / "run.json"
    first = shared_run(path, compute)
    second = shared_run(path, compute)
    assert len(calls) == 1
    assert second.to_dict() == json.loads(json.dumps(first.to_dict()))
    assert second.sample_outcomes() == first.sample_outcomes()


def test_exec_memo_runs_each_distinct_program_once(local_sandbox: Sandbox) -> None:
    memo = ExecMemo()
    ok = build_program(TASKS[0], TASKS[0].canonical_solution)
    bad = build_program(TASKS[0], "    return None\n")
    results = memo.run(local_sandbox, [ok, bad, ok, ok, bad], config=CodegenConfig())
    assert [r.passed for r in results] == [True, False, True, True, False]
    assert (memo.executed, memo.requested) == (2, 5)


def test_tier_ladder_follows_the_brief() -> None:
    gate = Gate(PHASE, PHASE.gate("pass_at_1"))
    up = Gate(PHASE, PHASE.gate("uplift_16_vs_1"))

    def tasks(value: float) -> list[object]:
        from harness.outcomes import Outcome

        n = 164
        ones = round(value * n)
        return [Outcome(f"t{i}", float(i < ones), cluster=f"t{i}") for i in range(n)]

    d_hi = gate.evaluate(tasks(0.9))[1]  # type: ignore[arg-type]
    d_mid = gate.evaluate(tasks(0.57))[1]  # type: ignore[arg-type]
    d_lo = gate.evaluate(tasks(0.1))[1]  # type: ignore[arg-type]
    assert tier_ladder(d_hi, None) is Tier.PRIMARY
    assert d_mid.tier == "fallback" and tier_ladder(d_mid, None) is Tier.FALLBACK
    assert tier_ladder(d_lo, None) is Tier.FAILED
    passing_uplift = up.spec  # decide an uplift that clearly holds
    del passing_uplift
    from harness.decision import Decision
    from harness.spec import DecisionRule

    uplift_pass = Decision(Verdict.PASS, "primary", "", 0.08, 0.05, DecisionRule.BOUND)
    uplift_fail = Decision(Verdict.FAIL, "none", "", 0.08, 0.05, DecisionRule.BOUND)
    assert tier_ladder(d_lo, uplift_pass) is Tier.UPLIFT
    assert tier_ladder(d_lo, uplift_fail) is Tier.FAILED
    assert tier_ladder(d_hi, uplift_fail) is Tier.PRIMARY


@pytest.mark.parametrize("alpha", [0.05 / 2, 0.05 / 9])
def test_upper_bound_request_count_is_the_smallest_that_bounds_p95(alpha: float) -> None:
    n = upper_bound_requests(0.95, alpha)
    rng = np.random.default_rng(0)
    for size, bounded in ((n, True), (n - 1, False)):
        x = rng.exponential(size=size)
        ci = stats.quantile_test(x, q=float(np.quantile(x, 0.95)), p=0.95).confidence_interval(
            confidence_level=1 - 2 * alpha
        )
        assert (not math.isnan(ci.high)) is bounded, (size, ci)
    assert upper_bound_requests(0.95, 0.025) == 72  # the "≥ 72 requests"


def test_exec_latency_is_measured_per_wave(local_sandbox: Sandbox) -> None:
    programs = [Program(build_program(t, t.canonical_solution)) for t in TASKS[:4]]
    lat = measure_exec_latency(
        local_sandbox, programs, scenario="s", concurrency=3, min_requests=7, config=CodegenConfig()
    )
    assert len(lat.latencies) == 9  # three full waves of three
    waves = [lat.latencies[i : i + 3] for i in (0, 3, 6)]
    assert all(len({s for _, s in w}) == 1 and w[0][1] > 0 for w in waves)
    assert all(o.latency_s == o.value for o in lat.outcomes())
    assert "control" in lat.source
    # the machine load while timing (before, each wave, after); the programs ran in other
    # processes, so no CPU share — and every outcome carries it for the decision layer
    load = LoadReading.model_validate(lat.meta["machine_load"])
    assert load.cpu_seconds is None and len(load.loadavg_1min) == 5
    assert all(o.raw["machine_load"] == lat.meta["machine_load"] for o in lat.outcomes())


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> object:
    import torch

    from harness.backends.hf import HFGenerator
    from trainers.tiny import TinyModelConfig, build_tiny_model

    torch.set_num_threads(1)
    path = build_tiny_model(
        TinyModelConfig(hidden_size=32, intermediate_size=64, corpus_snippets=20),
        out_dir=tmp_path_factory.getbasetemp() / "tiny",
    )
    return HFGenerator.from_pretrained(path, name="tiny-untrained")


def test_model_subject_runs_a_real_tiny_model_through_the_sandbox(
    tiny_generator: object, local_sandbox: Sandbox
) -> None:
    cfg = CodegenConfig(ks=(1, 2), max_tokens=16)
    subject = ModelSubject(tiny_generator, cfg)  # type: ignore[arg-type]
    run = run_codegen(subject, TASKS[:3], local_sandbox, cfg, data_digest=DIGEST)
    assert run.samples_drawn == 6 and run.lane == "real"
    assert run.identity["backend"] == "hf" and run.identity["weights_digest"]
    # an untrained model writes noise: every sample is executed and fails honestly
    assert all(s.status in {"failed", "error", "timeout"} for t in run.tasks for s in t.samples)
    assert all(t.gen_s is not None and t.gen_s > 0 for t in run.tasks)
    again = run_codegen(subject, TASKS[:3], local_sandbox, cfg, data_digest=DIGEST)
    assert [s.raw_text for t in again.tasks for s in t.samples] == [
        s.raw_text for t in run.tasks for s in t.samples
    ]  # seeded: the same sample stream every time


def test_request_latency_is_real_and_refuses_cache_hits(
    tiny_generator: object, tmp_path: Path
) -> None:
    from harness.backends.cache import CachingGenerator

    cfg = CodegenConfig(max_tokens=8)
    lat = measure_request_latency(
        tiny_generator,  # type: ignore[arg-type]
        TASKS,
        scenario="high",
        concurrency=4,
        min_requests=6,
        config=cfg,
    )
    assert len(lat.latencies) == 8 and all(s > 0 for _, s in lat.latencies)
    assert LoadReading.model_validate(lat.meta["machine_load"]).cpu_seconds is not None
    cached = CachingGenerator(tiny_generator, tmp_path)  # type: ignore[arg-type]
    measure_request_latency(
        cached, TASKS, scenario="c", concurrency=2, min_requests=2, config=cfg
    )  # first time: misses, real generation
    with pytest.raises(BackendError, match="answered from the cache"):
        measure_request_latency(
            cached, TASKS, scenario="c", concurrency=2, min_requests=2, config=cfg
        )


def test_model_requests_carry_stop_sequences_and_stage_seeds(tiny_generator: object) -> None:
    from harness.evaluators.codegen import StageRequest

    subject = ModelSubject(tiny_generator, CodegenConfig())  # type: ignore[arg-type]
    req: GenerationRequest = subject.request(StageRequest(TASKS[0], 4, 12, 99))
    assert req.sampling.n == 12 and req.sampling.seed == 99
    assert "\ndef" in req.sampling.stop and req.prompt == TASKS[0].prompt


@pytest.mark.docker
def test_oracle_subset_in_the_docker_sandbox() -> None:
    from sandbox.docker_pool import DockerSandbox

    with DockerSandbox() as box:
        subject = ControlSubject(OracleControl(), TASKS[:16])
        run = run_codegen(subject, TASKS[:16], box, CodegenConfig(), data_digest=DIGEST)
    assert run.sandbox["sandbox_kind"] == "docker"
    assert all(s.passed for t in run.tasks for s in t.samples)


def test_deep_tasks_limit_the_ladder_but_not_pass_at_1(local_sandbox: Sandbox) -> None:
    cfg = CodegenConfig(deep_tasks=5)
    tasks = TASKS[:12]
    run = run_codegen(
        ControlSubject(OracleControl(), tasks), tasks, local_sandbox, cfg, data_digest=DIGEST
    )
    assert [len(t.samples) for t in run.tasks] == [16] * 5 + [1] * 7
    assert run.samples_budget == 5 * 16 + 7 and run.samples_saved == 0
    assert len({o.cluster for o in run.sample_outcomes()}) == 12
    assert len({o.cluster for o in run.sample_outcomes(min_samples=4)}) == 5
    assert len(run.best_of_n_outcomes()) == 5
    # the run's load is evidence (the demo gate times its own flows, codegen_demo)
    assert LoadReading.model_validate(run.meta["run_machine_load"]).cpu_seconds is None
    shallow = run.tasks[-1]
    assert sequential_value(PHASE.gate("pass_at_1"), shallow) == 1.0
    assert sequential_value(PHASE.gate("pass_at_4"), shallow) is None
    assert sequential_value(PHASE.gate("uplift_16_vs_1"), shallow) is None


def _fake_measure(draw: object) -> object:
    """Latencies drawn from a known distribution (statistics test: no model involved)."""
    from harness.evaluators.codegen import LatencyRun

    def measure(start: int, count: int) -> LatencyRun:
        xs = draw(count)  # type: ignore[operator]
        return LatencyRun(
            "mc", 1, "simulated", [(f"r{start + i}", float(x)) for i, x in enumerate(xs)]
        )

    return measure


def test_two_look_quantile_keeps_both_error_rates_at_alpha() -> None:
    """Monte-Carlo: true p95 exactly at the threshold → false PASS ≤ α; false FAIL ≤ α."""
    from harness.evaluators.codegen import latency_plan, two_look_quantile

    alpha, q, reps = 0.05, 0.95, 600
    gate = PHASE.gate("latency_p95_normal")
    scale = 0.5 / -math.log(1 - q)  # exponential whose p95 is exactly 0.5 s
    rng = np.random.default_rng(1)
    verdicts: list[Verdict] = []
    stopped = 0
    for _ in range(reps):
        measure = _fake_measure(lambda n: rng.exponential(scale, size=n))
        _, est, info = two_look_quantile(
            measure,  # type: ignore[arg-type]
            q=q,
            threshold=0.5,
            alpha_one_sided=alpha,
            concurrency=1,
        )
        verdicts.append(decide(gate, est, alpha=alpha).verdict)
        stopped += bool(info["stopped_at_first_look"])
    se = math.sqrt(alpha * (1 - alpha) / reps)
    assert verdicts.count(Verdict.PASS) / reps <= alpha + 3 * se
    assert verdicts.count(Verdict.FAIL) / reps <= alpha + 3 * se
    # a clearly slow subject is decided FAIL at the first look
    slow = _fake_measure(lambda n: rng.exponential(3.0, size=n))
    _, est, info = two_look_quantile(
        slow,
        q=q,
        threshold=0.5,
        alpha_one_sided=alpha / 9,
        concurrency=1,  # type: ignore[arg-type]
    )
    assert info["stopped_at_first_look"] and info["requests_saved"] > 80
    assert decide(gate, est, alpha=alpha / 9).verdict is Verdict.FAIL
    # whole waves; the wave is the unit: 2 waves for a first-look lower bound, 102 for the
    # upper bound (a 32-request wave is one observation, not 32)
    assert latency_plan(q=q, alpha_one_sided=0.05 / 9, concurrency=32) == (64, 3264)
    assert latency_plan(q=q, alpha_one_sided=0.05 / 9, concurrency=1) == (16, 102)


def test_latency_is_judged_per_wave_not_per_request() -> None:
    """A wave's requests share one wall time: n is the number of waves (an interval over
    the requests would treat 32 copies of one measurement as 32 independent ones)."""
    from harness.evaluators.codegen import LatencyRun, two_look_quantile, wave_values

    def measure(start: int, count: int) -> LatencyRun:
        rows = [(f"r{start + i}", 0.6 + 0.1 * ((start + i) // 32)) for i in range(count)]
        return LatencyRun("stress", 32, "simulated", rows)

    lat, est, info = two_look_quantile(
        measure, q=0.95, threshold=0.5, alpha_one_sided=0.05 / 9, concurrency=32
    )
    assert list(wave_values(lat)) == pytest.approx([0.6, 0.7]) and est.n == 2
    # two waves: their minimum bounds p95 from below at α/2, so this FAIL is valid
    assert info["stopped_at_first_look"] and est.lo == pytest.approx(0.6)
    assert decide(PHASE.gate("latency_p95_stress"), est, alpha=0.05 / 9).verdict is Verdict.FAIL


def test_cached_generations_are_listed(oracle_run: CodegenRun) -> None:
    import dataclasses

    run = CodegenRun.from_dict(oracle_run.to_dict())
    run.tasks[0] = dataclasses.replace(run.tasks[0], cached_generation=True)
    assert run.cached_tasks() == [run.tasks[0].task_id]


def test_two_looks_merge_their_load_readings_and_an_overloaded_fail_is_inconclusive() -> None:
    from harness.evaluators.codegen import LatencyRun, two_look_quantile

    def measure(start: int, count: int) -> LatencyRun:
        load = 1.0 if start == 0 else 30.0  # the machine got busy during the second look
        reading = LoadReading(
            cpus=2, threads=1, loadavg_1min=[load], cpu_seconds=None, wall_seconds=count
        )
        xs = [0.45 if start == 0 else 0.9] * count  # the first look does not decide FAIL
        return LatencyRun(
            "s", 1, "simulated", [(f"r{start + i}", x) for i, x in enumerate(xs)],
            meta={"wall_s": 1.0, "machine_load": reading.model_dump(mode="json")},
        )  # fmt: skip

    lat, _, info = two_look_quantile(
        measure, q=0.95, threshold=0.5, alpha_one_sided=0.05 / 9, concurrency=1
    )
    assert info["looks"] == 2
    merged = LoadReading.model_validate(lat.meta["machine_load"])
    assert merged.loadavg_1min == [1.0, 30.0] and merged.overloaded() is not None
    gate = Gate(PHASE, PHASE.gate("latency_p95_normal"))
    _, decision, _ = gate.evaluate(lat.outcomes())
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.downgraded == "machine_load"
    assert "would have been FAIL" in decision.reason


def test_an_overloaded_first_look_over_the_threshold_stops_inconclusive() -> None:
    """Look 2 could only confirm a FAIL the load guard refuses: stop after look 1."""
    from harness.evaluators.codegen import LatencyRun, two_look_quantile

    def measure_at(load: float) -> object:
        def measure(start: int, count: int) -> LatencyRun:
            reading = LoadReading(
                cpus=2, threads=1, loadavg_1min=[load], cpu_seconds=None, wall_seconds=count
            )
            xs = [0.9 if (start + i) % 8 == 0 else 0.2 for i in range(count)]  # p95 0.9
            return LatencyRun(
                "s", 1, "simulated", [(f"r{start + i}", x) for i, x in enumerate(xs)],
                meta={"wall_s": 1.0, "machine_load": reading.model_dump(mode="json")},
            )  # fmt: skip

        return measure

    busy, _, info = two_look_quantile(
        measure_at(30.0),  # type: ignore[arg-type]
        q=0.95, threshold=0.5, alpha_one_sided=0.05 / 9, concurrency=1,
    )  # fmt: skip
    assert info["looks"] == 1 and "overloaded" in info["stopped_overloaded"]
    assert len(busy.latencies) == 16
    _, decision, _ = Gate(PHASE, PHASE.gate("latency_p95_normal")).evaluate(busy.outcomes())
    assert decision.verdict is Verdict.INCONCLUSIVE
    quiet, _, info = two_look_quantile(
        measure_at(1.0),  # type: ignore[arg-type]
        q=0.95, threshold=0.5, alpha_one_sided=0.05 / 9, concurrency=1,
    )  # fmt: skip
    assert info["looks"] == 2 and len(quiet.latencies) == 102
