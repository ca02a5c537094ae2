"""How busy the machine was while a timing was measured, and whether that timing is trustworthy.

A speed or latency gate judges a timing taken *now* on *this* machine.  On a
shared machine another job can take the CPU away from the timed code, and the
result then describes the contention, not the subject.  The evaluator wraps the
timed section in a :class:`LoadMonitor`; the resulting :class:`LoadReading`
goes into every timed outcome's ``raw["machine_load"]`` and into the evidence,
and the decision layer (:func:`harness.decision.guard_machine_load`) refuses
to turn a timing taken on an overloaded machine into a FAIL.

Two readings, one principle — *the timed thread must have had at least half
a CPU*:

* **load per CPU** — the 1-minute load average (runnable tasks, the timed one
  included) divided by the CPU count, sampled before, during and after the
  timing; above :data:`MAX_LOAD_PER_CPU` = 2 a runnable thread's fair share is
  below half a CPU;
* **CPU share** — the process's CPU seconds over the timing's wall seconds ×
  threads: the direct measurement of how much of the wall time the timed code
  actually ran; below :data:`MIN_CPU_SHARE` = 0.5 it waited for the CPU more
  than it ran.

The load average lags (an exponentially weighted 1-minute mean), which is why
it is sampled repeatedly and why the CPU share is checked as well.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_LOAD_PER_CPU",
    "MIN_CPU_SHARE",
    "LoadMonitor",
    "LoadReading",
    "machine_load_of",
]

#: above this 1-minute load average per CPU the timed thread's fair share is < half a CPU
MAX_LOAD_PER_CPU = 2.0
#: below this share of wall time × threads on the CPU, the timing mostly measured waiting
MIN_CPU_SHARE = 0.5


class LoadReading(BaseModel):
    """Load around one timed section (evidence; the limits in force are recorded with it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpus: int = Field(ge=1)
    threads: int = Field(ge=1, description="threads the timed code was configured to use")
    loadavg_1min: list[float] = Field(min_length=1, description="samples around the timing")
    cpu_seconds: float | None = Field(
        default=None, ge=0.0, description="None: the timed work ran in other processes"
    )
    wall_seconds: float = Field(ge=0.0)
    max_load_per_cpu: float = MAX_LOAD_PER_CPU
    min_cpu_share: float = MIN_CPU_SHARE

    @property
    def peak_load_per_cpu(self) -> float:
        return max(self.loadavg_1min) / self.cpus

    @property
    def cpu_share(self) -> float | None:
        """CPU seconds ÷ (wall seconds × threads); None when not measured or too short."""
        if self.cpu_seconds is None or self.wall_seconds <= 0.0:
            return None
        return self.cpu_seconds / (self.wall_seconds * self.threads)

    def overloaded(self) -> str | None:
        """Why the timing does not meet the documented conditions, or None when it does."""
        why: list[str] = []
        if self.peak_load_per_cpu > self.max_load_per_cpu:
            why.append(
                f"peak 1-minute load average {max(self.loadavg_1min):.1f} on {self.cpus} CPU(s) "
                f"= {self.peak_load_per_cpu:.2f} per CPU > limit {self.max_load_per_cpu:g}"
            )
        share = self.cpu_share
        if share is not None and share < self.min_cpu_share:
            why.append(
                f"the timed code ran {share:.0%} of the wall time × {self.threads} thread(s) "
                f"< {self.min_cpu_share:.0%}"
            )
        return "; ".join(why) or None

    def merged(self, other: LoadReading) -> LoadReading:
        """One reading over two timed sections (e.g. the two looks of a latency gate)."""
        cpu = (
            None
            if self.cpu_seconds is None or other.cpu_seconds is None
            else self.cpu_seconds + other.cpu_seconds
        )
        return self.model_copy(
            update={
                "loadavg_1min": [*self.loadavg_1min, *other.loadavg_1min],
                "cpu_seconds": cpu,
                "wall_seconds": self.wall_seconds + other.wall_seconds,
            }
        )

    def summary(self) -> str:
        share = self.cpu_share
        share_text = "n/a" if share is None else f"{share:.0%}"
        return (
            f"load average {min(self.loadavg_1min):.1f}–{max(self.loadavg_1min):.1f} on "
            f"{self.cpus} CPU(s), CPU share of the timing {share_text}"
        )


def _loadavg() -> float:
    return os.getloadavg()[0]


class LoadMonitor:
    """Context manager around a timed section; :meth:`sample` may be called inside it.

    ``loadavg`` and ``cpus`` are injectable so tests can simulate a busy machine.
    ``measure_cpu=False`` when the timed work runs in other processes (a sandbox
    container, a model server): then only the load average is judged.
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        measure_cpu: bool = True,
        loadavg: Callable[[], float] = _loadavg,
        cpus: int | None = None,
        cpu_clock: Callable[[], float] = time.process_time,
        wall_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._threads = threads
        self._measure_cpu = measure_cpu
        self._loadavg = loadavg
        self._cpus = cpus if cpus is not None else (os.cpu_count() or 1)
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._samples: list[float] = []
        self._cpu0 = self._wall0 = 0.0
        self.reading: LoadReading | None = None

    def sample(self) -> None:
        """Record the load average now (cheap; call it between timed rounds)."""
        self._samples.append(float(self._loadavg()))

    def start(self) -> LoadMonitor:
        """Begin the monitored section (what ``with`` does on entry)."""
        self.sample()
        self._cpu0, self._wall0 = self._cpu_clock(), self._wall_clock()
        return self

    def __enter__(self) -> LoadMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReading:
        """End the monitored section and return (and keep) its reading."""
        cpu, wall = self._cpu_clock() - self._cpu0, self._wall_clock() - self._wall0
        self.sample()
        self.reading = LoadReading(
            cpus=self._cpus,
            threads=self._threads,
            loadavg_1min=self._samples,
            cpu_seconds=max(cpu, 0.0) if self._measure_cpu else None,
            wall_seconds=max(wall, 0.0),
        )
        return self.reading


def machine_load_of(outcomes: Iterable[Any]) -> LoadReading | None:
    """The worst load reading attached to ``outcomes`` (``raw["machine_load"]``), if any.

    An evaluator attaches a reading only to timings where contention can only make
    the subject look worse (a latency, or a speedup whose candidate suffers more
    under contention — see docs/compression.md); the decision layer relies on that.
    """
    worst: LoadReading | None = None
    for o in outcomes:
        raw: Mapping[str, Any] = getattr(o, "raw", {}) or {}
        data = raw.get("machine_load")
        if data is None:
            continue
        reading = data if isinstance(data, LoadReading) else LoadReading.model_validate(data)
        if worst is None or _badness(reading) > _badness(worst):
            worst = reading
    return worst


def _badness(r: LoadReading) -> tuple[bool, float]:
    return (r.overloaded() is not None, r.peak_load_per_cpu)
