"""The benchmark's workload and bookkeeping (the timed comparison itself lives in benchmarks/)."""

from __future__ import annotations

import pytest

from sandbox.bench import BenchResult, ExecutorStats, humaneval_programs, run_benchmark


def test_workload_is_164_canonical_solutions_times_copies() -> None:
    progs = humaneval_programs(5)
    assert len(progs) == 820 and len({p.id for p in progs}) == 820
    first = progs[0].source
    assert "def check(" in first and first.rstrip().endswith(")")


def test_ratio_and_capacity_arithmetic() -> None:
    res = BenchResult(copies=1, tasks=164, cpus=2, load_before=(0.0, 0.0, 0.0))
    res.executors["humaneval"] = ExecutorStats("humaneval", 100, 10.0, 100)
    res.executors["docker"] = ExecutorStats("docker", 100, 2.0, 100, cpu_ms_per_program=5.0)
    assert res.ratio("docker", "humaneval") == pytest.approx(5.0)
    assert res.executors["docker"].capacity_exec_per_s is not None
    assert "ratio docker/humaneval" in res.table()


def test_local_bench_runs_and_every_canonical_solution_passes() -> None:
    res = run_benchmark(copies=1, executors=("local",))
    stats = res.executors["local"]
    assert stats.programs == 164 and stats.passed == 164
    assert not res.canonical_failures["local"]
    assert stats.cpu_ms_per_program is not None and stats.cpu_ms_per_program > 0
