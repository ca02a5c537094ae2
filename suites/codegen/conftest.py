"""Code-gen phase subjects: the model plus the oracle and mutant controls.

One :class:`CodegenSubject` fixture per subject (session-scoped, parametrized
``model`` / ``oracle`` / ``mutant``) holds the subject's single run; every
gate test slices it.  The run is computed once per session even under xdist
(:func:`harness.evaluators.codegen.shared_run` under a file lock in the
session-shared directory).  Run ``pytest --dist loadgroup`` so each subject's
tests land on one worker (``xdist_group`` marks below) and the two workers
compute different subjects in parallel instead of waiting for each other.

Options (besides the shared ones in ``suites/conftest.py``):
``--codegen-subjects model,oracle,mutant`` (env ``HARNESS_CODEGEN_SUBJECTS``)
and ``--codegen-model-tasks N`` (env ``HARNESS_CODEGEN_MODEL_TASKS``), a
documented subset for the model subject only (the controls are cheap and
always use every task ``--limit`` allows); ``--codegen-train-corpus FILE``
(env ``HARNESS_CODEGEN_TRAIN_CORPUS``) names the model's training corpus for
the contamination gate when the model directory does not carry one.

Under ``--lane replay`` the model subject runs on the tasks the fixture
recorded (``fixtures/replay/codegen.manifest.json``; a documented subset; the
controls keep every task), the model's generations come from the recording
(a changed or unrecorded request is a ``ReplayMiss``), every candidate is
still executed in the sandbox, and the latency gates are skipped: a replayed
answer has no latency to measure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import Generator, canonical_json, sha256_hex
from harness.data.contamination import ContaminationReport, bench_items, check_contamination
from harness.evaluators.codegen import (
    CodegenConfig,
    CodegenRun,
    CodegenSubject,
    ControlSubject,
    ModelSubject,
    SubjectRun,
    TaskRecord,
    run_codegen,
    sequential_value,
    shared_run,
)
from harness.evaluators.controls import MutantControl, OracleControl
from harness.evaluators.humaneval import HumanEvalTask, dataset_path, file_digest, load_tasks
from harness.gate import Gate, GateOptions
from harness.settings import env_option
from harness.spec import PhaseSpec, load_phases

PHASE = "codegen"
#: The embedded tiny model runs the whole ladder on this many tasks by default (pass@1
#: still covers all 164): sampling 16 × 164 completions on 2 shared CPU cores would
#: blow the main job's time budget.  Documented in the report's evidence (``run``).
EMBEDDED_DEEP_TASKS = 64
ALL_SUBJECTS = ("model", "oracle", "mutant")


def _subjects(config: pytest.Config) -> list[str]:
    raw = config.getoption("--codegen-subjects") or env_option("HARNESS_CODEGEN_SUBJECTS")
    if not raw:
        return list(ALL_SUBJECTS)
    names = [s.strip() for s in str(raw).split(",") if s.strip()]
    bad = [s for s in names if s not in ALL_SUBJECTS]
    if bad:
        raise pytest.UsageError(
            f"--codegen-subjects: unknown subject(s) {bad}; choose from {', '.join(ALL_SUBJECTS)}"
        )
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "codegen_subject" in metafunc.fixturenames:
        names = _subjects(metafunc.config)
        metafunc.parametrize(
            "codegen_subject",
            [pytest.param(n, marks=pytest.mark.xdist_group(f"codegen-{n}")) for n in names],
            ids=names,
            indirect=True,
            scope="session",
        )


def _gates_dir(config: pytest.Config) -> Path:
    opt = config.getoption("--gates-dir")
    return Path(opt) if opt else Path(config.rootpath) / "gates"


def _phase(config: pytest.Config) -> PhaseSpec:
    for phase in load_phases(_gates_dir(config)):
        if phase.phase == PHASE:
            return phase
    raise pytest.UsageError(f"no '{PHASE}' phase in {_gates_dir(config)}")


def sequential_stopper(
    phase: PhaseSpec, *, seed: int
) -> Callable[[Sequence[TaskRecord]], str | None]:
    """Stop the run once every pass@k / uplift gate's anytime-valid bound is decided."""
    options = GateOptions(sequential=True, seed=seed)
    monitors = {
        spec.id: (spec, Gate(phase, spec, options=options).sequential(lower=0.0, upper=1.0))
        for spec in phase.gates
        if spec.metric in ("pass_at_k", "pass_at_k_uplift")
    }
    fed = 0

    def should_stop(done: Sequence[TaskRecord]) -> str | None:
        nonlocal fed
        for task in done[fed:]:
            for spec, monitor in monitors.values():
                value = sequential_value(spec, task)
                if value is not None:
                    monitor.update(value)
        fed = len(done)
        if monitors and all(m.decided for _, m in monitors.values()):
            return (
                f"every sequential gate ({', '.join(monitors)}) decided on its anytime-valid "
                f"bound after {fed} tasks"
            )
        return None

    return should_stop


def _limit(value: Any, env: str) -> int | None:
    raw = value if value is not None else env_option(env)
    if raw is None or raw == "":
        return None
    n = int(raw)
    if n < 1:
        raise pytest.UsageError(f"{env}={raw!r} must be a positive number of tasks")
    return n


def _replay(config: pytest.Config) -> bool:
    return str(config.getoption("--lane")) == "replay"


@pytest.fixture(scope="session")
def codegen_replay_manifest(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The codegen fixture's manifest (task subset, seed, recorded model); {} in the real lane."""
    if not _replay(request.config):
        return {}
    from harness.backends.replay import manifest_path, read_manifest
    from harness.errors import ReplayMiss

    where: Path = request.getfixturevalue("replay_dir")
    recording = where / "codegen.jsonl" if where.is_dir() else where
    manifest = read_manifest(recording)
    if not manifest.get("tasks"):
        raise ReplayMiss(
            f"--lane replay: {manifest_path(recording)} is missing or lists no tasks, so the "
            "codegen phase does not know what was recorded; record the fixture with: harness "
            "replay record --phase codegen --model models/tiny-code --out "
            f"{recording}"
        )
    return {**manifest, "recording": str(recording)}


def _corpus_docs(path: Path) -> list[str]:
    from harness.data.contamination import read_corpus

    return list(read_corpus(path))


@pytest.fixture(scope="session")
def model_contamination(
    request: pytest.FixtureRequest, codegen_replay_manifest: dict[str, Any]
) -> tuple[ContaminationReport | None, str]:
    """13-gram overlap of the model's training corpus with HumanEval, and where it came from.

    Recomputed here from the corpus itself (never read back from a stored figure):
    the embedded model's directory carries its exact training texts; in the replay
    lane the corpus is regenerated and must hash to the digest the recorded model
    was built from.  ``(None, reason)`` when the corpus is unknown.
    """
    config = request.config
    explicit = _opt_path(config, "--codegen-train-corpus", "HARNESS_CODEGEN_TRAIN_CORPUS")
    docs: list[str] | None = None
    where = ""
    if explicit is not None:
        docs, where = _corpus_docs(explicit), f"training corpus {explicit} (given by the user)"
    elif codegen_replay_manifest:
        docs, where = _replayed_corpus(codegen_replay_manifest)
    else:
        source = request.getfixturevalue("model_source")
        from trainers.tiny import TRAIN_CORPUS_FILE

        carried = Path(source.location) / TRAIN_CORPUS_FILE
        if source.kind != "endpoint" and carried.is_file():
            docs, where = _corpus_docs(carried), str(carried)
        else:
            where = (
                f"the training corpus of {source.label} is unknown (no {TRAIN_CORPUS_FILE} in "
                "the model directory); set HARNESS_CODEGEN_TRAIN_CORPUS=FILE to check it"
            )
    if docs is None:
        return None, where
    report = check_contamination(docs, bench_items("humaneval"), bench="humaneval")
    return report, where


def _replayed_corpus(manifest: dict[str, Any]) -> tuple[list[str] | None, str]:
    """Regenerate the recorded tiny-code model's corpus; refuse it if the digest differs."""
    build = manifest.get("model", {}).get("build", {})
    recorded = build.get("corpus", {}).get("digest")
    if build.get("kind") != "tiny-code" or not recorded:
        return None, "the recorded model is not the embedded tiny-code build; corpus unknown"
    from trainers.tiny import TinyCodeTrainConfig, tiny_code_corpus

    texts, info = tiny_code_corpus(TinyCodeTrainConfig.model_validate(build["config"]))
    if info["digest"] != recorded:
        return None, (
            f"the tiny-code corpus regenerated here ({info['digest'][:19]}…, {info['source']}) "
            f"is not the one the recorded model was trained on ({recorded[:19]}…); re-record "
            f"the fixture on this machine: {manifest.get('record_command')}"
        )
    return texts, f"tiny-code training corpus regenerated ({info['source']}), digest {recorded}"


def _opt_path(config: pytest.Config, name: str, env: str) -> Path | None:
    raw = config.getoption(name) or env_option(env)
    return Path(raw) if raw else None


@pytest.fixture(scope="session")
def codegen_subject(request: pytest.FixtureRequest, shared_dir: Path) -> SubjectRun:
    """The named subject's run (computed once per session, shared across xdist workers)."""
    name: str = request.param
    config = request.config
    phase = _phase(config)
    seed = int(config.getoption("--harness-seed"))
    sequential = bool(config.getoption("--sequential"))
    limit = config.getoption("--limit")
    replay: dict[str, Any] = request.getfixturevalue("codegen_replay_manifest")
    notes: dict[str, Any] = {}
    if replay and name == "model":
        # only the model is bound to what was recorded; the controls generate nothing and
        # keep every task their expected verdicts need
        tasks = load_tasks(task_ids=list(replay["tasks"])[:limit])
        notes["subset"] = (
            f"replay lane: the {len(tasks)} HumanEval tasks recorded in {replay['recording']} "
            "(a documented subset)"
        )
    else:
        tasks = load_tasks(limit=limit)
        if limit is not None:
            notes["subset"] = f"first {len(tasks)} of 164 HumanEval tasks (--limit {limit})"
    cfg = CodegenConfig(seed=seed, sequential=sequential)
    sandbox_choice = request.getfixturevalue("sandbox_choice")
    generator: Generator | None = None
    subject: CodegenSubject
    demo_subject: CodegenSubject | None = None
    if name == "model":
        model_tasks = _limit(
            config.getoption("--codegen-model-tasks"), "HARNESS_CODEGEN_MODEL_TASKS"
        )
        if model_tasks is not None and model_tasks < len(tasks):
            tasks = tasks[:model_tasks]
            notes["subset"] = (
                f"model subject: first {len(tasks)} of 164 HumanEval tasks "
                f"(--codegen-model-tasks {model_tasks})"
            )
        source = request.getfixturevalue("model_source")
        deep_raw = config.getoption("--codegen-deep-tasks") or env_option(
            "HARNESS_CODEGEN_DEEP_TASKS"
        )
        if deep_raw is None and replay:
            deep = int(replay["deep_tasks"])
        elif deep_raw is None:
            deep = EMBEDDED_DEEP_TASKS if source.kind == "embedded" else None
        elif str(deep_raw) == "all":
            deep = None
        else:
            deep = _limit(deep_raw, "HARNESS_CODEGEN_DEEP_TASKS")
        if deep is not None and deep < len(tasks):
            cfg = CodegenConfig(seed=seed, sequential=sequential, deep_tasks=deep)
            notes["deep_subset"] = (
                f"model subject: the n = 1, 4, 16 ladder on the first {deep} tasks; pass@1 on "
                f"all {len(tasks)} (tasks beyond {deep} have one sample each)"
            )
        generator = request.getfixturevalue("model_generator")
        subject = ModelSubject(request.getfixturevalue("cached_generator"), cfg)
        # the demo budget is timed live: the uncached generator (harness.evaluators.codegen_demo)
        demo_subject = ModelSubject(generator, cfg)
        label = f"model:{source.label}"
        notes["model_source"] = {"kind": source.kind, "location": source.location}
        if source.kind == "embedded":
            notes["model_note"] = (
                "embedded tiny-code model: ~1M parameters, trained briefly on CPU on documented "
                "standard-library functions plus generated snippets, decontaminated against "
                "HumanEval (13-gram overlap; see the contamination gate)"
            )
        report, corpus_note = request.getfixturevalue("model_contamination")
        notes["contamination"] = (
            {**report.summary(), "corpus": corpus_note}
            if report is not None
            else {"unknown": corpus_note}
        )
        if replay:
            notes["replay"] = {
                "recording": replay["recording"],
                "recorded_at": replay.get("recorded_at"),
                "recorded_model": replay.get("model", {}).get("identity_digest"),
                "record_command": replay.get("record_command"),
            }
    elif name == "oracle":
        subject = demo_subject = ControlSubject(OracleControl(), tasks)
        label = "oracle"
    else:
        mutant = MutantControl(seed=seed)
        subject = demo_subject = ControlSubject(mutant, tasks)
        label = "mutant"
        notes["mutant"] = {
            "broken_fraction": mutant.broken_fraction,
            "fault_rate": mutant.fault_rate,
            "broken_tasks": len(mutant.broken_tasks(tasks)),
        }
    data_digest = file_digest(dataset_path())
    run_tasks, deep_ids = _shard_slice(config, tasks, cfg)
    if deep_ids is not None:
        notes["shard"] = f"this shard ran {len(run_tasks)} of {len(tasks)} tasks (--shard)"
    key = sha256_hex(
        canonical_json(
            {
                "subject": subject.identity(),
                "config": cfg.to_dict(),
                "tasks": [t.task_id for t in run_tasks],
                "deep_ids": None if deep_ids is None else sorted(deep_ids),
                "data": data_digest,
                "sandbox": sandbox_choice.sandbox.describe(),
            }
        )
    )
    stopper = sequential_stopper(phase, seed=seed) if sequential else None

    def compute() -> CodegenRun:
        return run_codegen(
            subject,
            run_tasks,
            sandbox_choice.sandbox,
            cfg,
            data_digest=data_digest,
            should_stop=stopper,
            key=key,
            deep_ids=deep_ids,
        )

    run = shared_run(shared_dir / f"codegen-{name}-{key[:16]}.json", compute)
    return SubjectRun(
        name=name,
        label=label,
        lane=run.lane,
        run=run,
        tasks=tasks,
        sandbox_label=sandbox_choice.label,
        sandbox=sandbox_choice.sandbox,
        phase=phase,
        generator=generator,
        notes=notes,
        demo_subject=demo_subject,
    )


def _shard_slice(
    config: pytest.Config, tasks: list[HumanEvalTask], cfg: CodegenConfig
) -> tuple[list[HumanEvalTask], frozenset[str] | None]:
    """Under ``--shard I/N``: this shard's tasks and the full list's ladder tasks.

    A task is the shard unit (its samples share a cluster), so a shard draws
    and executes only its own tasks.  The "first ``deep_tasks``" ladder subset
    is fixed on the full list before slicing, so every shard agrees on which
    tasks get n = 16 and the merged run equals the unsharded one.  The gate
    tests pass the full list to ``gate.shard_items`` (``SubjectRun.tasks``).
    """
    raw = config.getoption("--shard")
    if raw is None:
        return tasks, None
    from harness.shard import ShardSpec

    shard = ShardSpec.parse(str(raw))
    deep = tasks if cfg.deep_tasks is None else tasks[: cfg.deep_tasks]
    return shard.take(tasks, key=lambda t: t.task_id), frozenset(t.task_id for t in deep)
