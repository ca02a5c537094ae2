"""The demo-budget timing (harness/evaluators/codegen_demo.py) with a fake clock.

No real time is measured here: a fake generator and a fake sandbox advance an
injected clock, so each flow's latency is known exactly and the gate's
decision and the number of flows timed can be asserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
)
from harness.backends.cache import CacheMode, CachingGenerator
from harness.decision import Verdict, decide
from harness.errors import BackendError
from harness.evaluators import codegen, codegen_demo
from harness.evaluators.codegen import (
    CodegenConfig,
    ControlSubject,
    LatencyRun,
    ModelSubject,
    latency_plan,
    run_codegen,
    two_look_quantile,
)
from harness.evaluators.codegen_demo import demo_plan, measure_demo_latency
from harness.evaluators.controls import OracleControl
from harness.evaluators.humaneval import load_tasks
from harness.gate import Gate
from harness.spec import load_phase
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox

PHASE = load_phase(Path(__file__).parents[3] / "gates" / "codegen.yaml")
TASKS = load_tasks(limit=12)
IDENT = ModelIdentity(backend="fake", name="counting", weights_digest="w")


class FakeClock:
    """``time`` stand-in: only the fakes below move it."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class ClockedGenerator:
    """Counts real calls; each sample costs ``seconds(task_no)`` on the fake clock."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds, self.calls = clock, seconds, 0

    @property
    def identity(self) -> ModelIdentity:
        return IDENT

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.calls += 1
        self.clock.now += self.seconds * sum(r.sampling.n for r in requests)
        return [
            Generation(
                request_id=r.request_id,
                texts=tuple(f"    return {r.sampling.seed % 7 + i}\n" for i in range(r.sampling.n)),
                finish_reasons=("stop",) * r.sampling.n,
                latency=Latency(total_s=0.0),
                model=IDENT,
                sampling=r.sampling,
            )
            for r in requests
        ]


class ClockedSandbox(Sandbox):
    """Runs nothing: every program 'passes' and each call costs 0.05 s on the fake clock."""

    kind = "fake"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    @property
    def parallelism(self) -> int:
        return 1

    def run(self, programs: Sequence[Program], **_: object) -> list[ExecResult]:
        self.clock.now += 0.05
        return [
            ExecResult(
                program_id=p.id,
                status=ExecStatus.PASSED,
                exit_code=0,
                stdout="",
                stderr="",
                truncated=False,
                duration_s=0.0,
                sandbox_kind=self.kind,
            )
            for p in programs
        ]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    for module in (codegen, codegen_demo):
        monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


def test_demo_plan_is_seeded_outcome_blind_and_cycles() -> None:
    plan = demo_plan(TASKS[:4], n=10, seed=0)
    assert [item.repeat for item in plan] == [0] * 4 + [1] * 4 + [2] * 2
    assert {item.task.task_id for item in plan[:4]} == {t.task_id for t in TASKS[:4]}
    assert [i.item_id for i in demo_plan(TASKS[:4], n=3, seed=0)] == [i.item_id for i in plan[:3]]
    orders = {tuple(i.task.task_id for i in demo_plan(TASKS, n=12, seed=s)) for s in range(4)}
    assert len(orders) > 1  # the seed, not the task list's order, decides the order
    with pytest.raises(BackendError, match="at least one task"):
        demo_plan([], n=3, seed=0)


def test_a_warm_cache_still_times_live_flows(tmp_path: Path, clock: FakeClock) -> None:
    """A rerun whose every generation is cached still gets a demo timing — from live calls."""
    raw = ClockedGenerator(clock, seconds=0.1)
    cached = CachingGenerator(raw, tmp_path / "gen", mode=CacheMode.USE)
    cfg = CodegenConfig()
    box = ClockedSandbox(clock)
    tasks = TASKS[:4]
    run_codegen(ModelSubject(cached, cfg), tasks, box, cfg, data_digest="d")
    warm = run_codegen(ModelSubject(cached, cfg), tasks, box, cfg, data_digest="d")
    assert warm.cached_tasks() == [t.task_id for t in tasks]  # the accuracy run: all cached
    calls = raw.calls
    lat = measure_demo_latency(ModelSubject(raw, cfg), demo_plan(tasks, n=4, seed=0), box, cfg)
    assert raw.calls == calls + 4 * len(cfg.stages())  # every flow generated live, per stage
    # 16 samples x 0.1 s + 3 sandbox calls x 0.05 s per flow, exactly
    assert [s for _, s in lat.latencies] == pytest.approx([1.75] * 4)
    assert lat.concurrency == 1 and "machine_load" in lat.meta
    assert all(row["samples"] == 16 for row in lat.meta["flows"])
    with pytest.raises(BackendError, match="from a cache"):
        measure_demo_latency(ModelSubject(cached, cfg), demo_plan(tasks, n=1, seed=0), box, cfg)


def _decide_demo(clock: FakeClock, seconds: float) -> tuple[Verdict, int, ClockedGenerator]:
    gate = Gate(PHASE, PHASE.gate("demo_e2e_p95"))
    gen = ClockedGenerator(clock, seconds=seconds)
    cfg, box = CodegenConfig(), ClockedSandbox(clock)
    _, n_full = latency_plan(q=0.95, alpha_one_sided=gate.alpha_decision, concurrency=1)
    plan = demo_plan(TASKS, n=n_full, seed=0)

    def measure(start: int, count: int) -> LatencyRun:
        return measure_demo_latency(ModelSubject(gen, cfg), plan[start : start + count], box, cfg)

    lat, est, _ = two_look_quantile(
        measure, q=0.95, threshold=8.0, alpha_one_sided=gate.alpha_decision, concurrency=1
    )
    return decide(gate.spec, est, alpha=gate.alpha_decision).verdict, len(lat.latencies), gen


def test_the_demo_gate_is_decided_on_every_run_from_timed_flows(clock: FakeClock) -> None:
    """Fast flows PASS after the 102 the upper bound needs; slow ones FAIL after 16."""
    verdict, flows, gen = _decide_demo(clock, seconds=0.1)  # 1.75 s per flow
    assert verdict is Verdict.PASS and flows == 102
    assert gen.calls == 102 * 3
    verdict, flows, _ = _decide_demo(clock, seconds=1.0)  # 16.15 s per flow
    assert verdict is Verdict.FAIL and flows == 16


def test_a_control_flow_is_timed_without_generation(clock: FakeClock) -> None:
    cfg = CodegenConfig()
    lat = measure_demo_latency(
        ControlSubject(OracleControl(), TASKS[:2]),
        demo_plan(TASKS[:2], n=2, seed=0),
        ClockedSandbox(clock),
        cfg,
    )
    assert "no generation (control)" in lat.source
    assert all(row["gen_s"] is None for row in lat.meta["flows"])
