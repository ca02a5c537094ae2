"""Timings taken on an overloaded machine never FAIL a gate (and never PASS one by that path)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.decision import Verdict, decide, guard_machine_load
from harness.gate import Gate
from harness.machine_load import (
    MAX_LOAD_PER_CPU,
    MIN_CPU_SHARE,
    LoadMonitor,
    LoadReading,
    machine_load_of,
)
from harness.outcomes import Outcome
from harness.spec import GateSpec, PhaseSpec
from harness.stats.estimate import Estimate


def _reading(load: float, *, cpu_s: float = 10.0, wall_s: float = 10.0) -> LoadReading:
    return LoadReading(
        cpus=2, threads=1, loadavg_1min=[load], cpu_seconds=cpu_s, wall_seconds=wall_s
    )


def test_monitor_samples_load_around_and_inside_the_timing() -> None:
    loads = iter([1.0, 9.0, 3.0, 2.0])  # before, two samples inside, after
    cpu = iter([0.0, 2.0])  # 2 CPU seconds ...
    wall = iter([100.0, 110.0])  # ... in 10 wall seconds: the timing ran 20 % of the time
    mon = LoadMonitor(threads=1, cpus=2, loadavg=lambda: next(loads),
                      cpu_clock=lambda: next(cpu), wall_clock=lambda: next(wall))  # fmt: skip
    with mon:
        mon.sample()
        mon.sample()
    r = mon.reading
    assert r is not None and r.loadavg_1min == [1.0, 9.0, 3.0, 2.0]
    assert r.peak_load_per_cpu == 4.5 and r.cpu_share == pytest.approx(0.2)
    why = r.overloaded()
    assert why is not None and "4.50 per CPU" in why and "ran 20%" in why


@pytest.mark.parametrize(
    "load,cpu_s,overloaded",
    [
        (2 * MAX_LOAD_PER_CPU, 10.0, False),  # at the limit: still fine
        (2 * MAX_LOAD_PER_CPU + 0.1, 10.0, True),  # above it
        (1.0, 10.0 * MIN_CPU_SHARE, False),
        (1.0, 10.0 * MIN_CPU_SHARE - 0.1, True),  # quiet load average, but descheduled
    ],
)
def test_limits(load: float, cpu_s: float, overloaded: bool) -> None:
    assert (_reading(load, cpu_s=cpu_s).overloaded() is not None) is overloaded


def _decision(value: float, lo: float, hi: float) -> Any:
    spec = GateSpec(
        id="speed",
        metric="mean",
        direction="ge",  # type: ignore[arg-type]
        tiers={"primary": 0.69},
    )
    est = Estimate(value=value, lo=lo, hi=hi, n=10, method="t", alpha=0.1)
    return decide(spec, est, alpha=0.05)


def test_guard_turns_only_fail_into_inconclusive() -> None:
    busy = _reading(20.0)
    fail, ok = _decision(0.4, 0.3, 0.5), _decision(1.4, 1.2, 1.6)
    undecided = _decision(0.7, 0.6, 0.8)
    g = guard_machine_load(fail, load=busy)
    assert g.verdict is Verdict.INCONCLUSIVE and g.downgraded == "machine_load"
    assert g.tier == "none" and "would have been FAIL" in g.reason
    assert type(g).from_dict(g.to_dict()) == g
    assert guard_machine_load(ok, load=busy).verdict is Verdict.PASS
    assert guard_machine_load(undecided, load=busy).verdict is Verdict.INCONCLUSIVE
    # a quiet machine changes no verdict; no reading changes nothing at all
    assert guard_machine_load(fail, load=_reading(1.0)) == fail  # within the limits: as is
    assert "over the limits" in guard_machine_load(ok, load=busy).reason
    assert guard_machine_load(fail, load=None) == fail


def test_gate_reads_the_worst_reading_from_the_outcomes() -> None:
    phase = PhaseSpec(
        phase="p",
        alpha=0.05,
        gates=[
            GateSpec(
                id="speed",
                metric="mean",
                direction="ge",  # type: ignore[arg-type]
                bounds="unbounded",  # type: ignore[arg-type]
                normality="simulated log speedups, symmetric by construction",
                tiers={"primary": 0.69},
            )
        ],
    )
    values = [0.30, 0.35, 0.28, 0.33, 0.31, 0.29, 0.34, 0.32, 0.30, 0.33]
    quiet = _reading(1.0).model_dump(mode="json")
    busy = _reading(20.0).model_dump(mode="json")
    outcomes = [
        Outcome(f"p{i}", v, raw={"machine_load": busy if i == 3 else quiet})
        for i, v in enumerate(values)
    ]
    assert machine_load_of(outcomes) == LoadReading.model_validate(busy)
    gate = Gate(phase, phase.gates[0])
    assert gate.evaluate(outcomes)[1].verdict is Verdict.INCONCLUSIVE
    plain = [Outcome(f"p{i}", v) for i, v in enumerate(values)]
    assert gate.evaluate(plain)[1].verdict is Verdict.FAIL
