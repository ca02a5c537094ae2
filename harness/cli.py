"""The ``harness`` command line: run the phase gates, render and compare evidence, plan n.

``harness run`` is a thin, loud wrapper around pytest on ``suites/``: it picks a
fresh ``reports/<timestamp>/`` directory, streams pytest's own progress, and
prints the gate summary from the evidence the run wrote.  Sub-apps owned by
other packages (sandbox, models, replay, data, calibrate) are mounted lazily:
only the one being invoked is imported, a sub-app whose module does not exist is
listed as unavailable, and an import error *inside* an existing one is shown
rather than hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import HarnessError
from harness.scale_cli import merge_command, trend_command

if TYPE_CHECKING:
    from rich.table import Table

    from harness.accounting import RunAccount

__all__ = ["app", "build_app", "main"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

#: pytest exit code when nothing was collected.
NO_TESTS_COLLECTED = 5


@dataclass(frozen=True)
class SubApp:
    name: str
    module: str
    attrs: tuple[str, ...]
    help: str


SUBAPPS: tuple[SubApp, ...] = (
    SubApp("sandbox", "sandbox.cli", ("app",), "Code-execution sandbox: build, check, bench."),
    SubApp("models", "trainers.cli", ("app",), "Build and train the local tiny models."),
    SubApp("replay", "harness.backends.cli", ("app",), "Record and inspect the replay lane."),
    SubApp("data", "harness.data.cli", ("app",), "Fetch and validate datasets."),
    SubApp("codegen", "harness.evaluators.codegen_score", ("app",), "Score HumanEval samples."),
    SubApp("spec", "harness.spec_cli", ("app",), "The gate YAML schema (JSON Schema, reference)."),
    SubApp(
        "agentdojo",
        "harness.evaluators.agentdojo_lane",
        ("app",),
        "AgentDojo lane: utility and targeted ASR per suite, with/without the adapter.",
    ),
    SubApp(
        "cb-data",
        "harness.evaluators.cb_data_cli",
        ("app",),
        "Circuit-breaker data: export AgentDojo/ASB cases as samples, check Gate 1.",
    ),
    SubApp(
        "calibrate",
        "harness.calibrate",
        ("app", "run_calibration"),
        "Monte-Carlo calibration of the gate statistics.",
    ),
)


class LaneChoice(StrEnum):
    REAL = "real"
    REPLAY = "replay"


class InconclusiveChoice(StrEnum):
    FAIL = "fail"
    XFAIL = "xfail"
    PASS = "pass"


class DirectionChoice(StrEnum):
    LE = "le"
    GE = "ge"


# --------------------------------------------------------------------------- run


# ``harness run``'s options, one alias each (the signature below stays readable)
_PhaseOpt = Annotated[
    list[str] | None, typer.Option("--phase", help="Only this phase (repeatable).")
]
_WorkersOpt = Annotated[
    str, typer.Option("-n", "--workers", help="xdist workers: a number, 'auto', or 0.")
]
_LimitOpt = Annotated[
    int | None,
    typer.Option(help="Evaluate only the first N items per dataset (a documented subset)."),
]
_LaneOpt = Annotated[LaneChoice, typer.Option(help="Subject lane for model gates.")]
_ModelOpt = Annotated[
    str | None, typer.Option(help="Model path/identity to evaluate (default: embedded).")
]
_OutOpt = Annotated[
    Path | None, typer.Option(help="Report directory (default: reports/<timestamp>).")
]
_SuitesOpt = Annotated[Path, typer.Option(help="Directory of phase suites.")]
_GatesDirOpt = Annotated[
    Path | None, typer.Option("--gates-dir", help="Gate YAML directory (default: gates).")
]
_BaselineOpt = Annotated[Path | None, typer.Option(help="Baseline evidence for delta columns.")]
_InconclusiveOpt = Annotated[
    InconclusiveChoice,
    typer.Option(
        help="How a test with an INCONCLUSIVE gate is displayed (failed/xfailed/passed). "
        "Display only: the exit code is 1 whenever a gate is not PASS."
    ),
]
_SequentialOpt = Annotated[
    bool, typer.Option("--sequential", help="Stop sampling early on anytime-valid bounds.")
]
_FailOnVerdictOpt = Annotated[
    bool,
    typer.Option(
        help="Exit 1 when a gate's verdict is FAIL/INCONCLUSIVE. With --no-fail-on-verdict "
        "honest model verdicts exit 0 (harness errors still exit 2)."
    ),
]
_ProgressOpt = Annotated[
    bool,
    typer.Option(
        help="Print a line on stderr when each phase starts and when it finishes "
        "(wall time, verdict counts)."
    ),
]
_NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Recompute every cached artifact (generations, judges, trained models) "
        "and overwrite the cache entries.",
    ),
]
_ShardOpt = Annotated[
    str | None,
    typer.Option(
        metavar="I/N",
        help="Evaluate shard I of N of every gate's items and write outcomes, no verdicts; "
        "decide with `harness merge DIR...` (docs/scaling.md).",
    ),
]


def _run(
    ctx: typer.Context,
    phase: _PhaseOpt = None,
    workers: _WorkersOpt = "auto",
    limit: _LimitOpt = None,
    lane: _LaneOpt = LaneChoice.REAL,
    model: _ModelOpt = None,
    out: _OutOpt = None,
    suites: _SuitesOpt = Path("suites"),
    gates_dir: _GatesDirOpt = None,
    baseline: _BaselineOpt = None,
    inconclusive: _InconclusiveOpt = InconclusiveChoice.FAIL,
    sequential: _SequentialOpt = False,
    fail_on_verdict: _FailOnVerdictOpt = True,
    progress: _ProgressOpt = True,
    no_cache: _NoCacheOpt = False,
    shard: _ShardOpt = None,
) -> None:
    """Run the phase gates (pytest on suites/) and write reports/<timestamp>/.

    Extra arguments after the options are passed to pytest unchanged
    (e.g. ``harness run -- -k pass1 -x``).  Exit codes come from the evidence: 0 every
    declared gate of every selected phase PASSed; 1 a gate is FAIL, INCONCLUSIVE or
    MISSING (not decided: skipped, errored, never checked, no test); 2 a harness error
    (a control gave the wrong verdict, a gate checked twice, a test broke outside any
    gate); 5 nothing was collected.
    """
    out_dir = _run_dir(suites, out)
    args = pytest_args(
        suites=suites,
        out_dir=out_dir,
        phases=phase or [],
        workers=workers,
        limit=limit,
        lane=lane.value,
        model=model,
        gates_dir=gates_dir,
        baseline=baseline,
        inconclusive=inconclusive.value,
        sequential=sequential,
        progress=progress,
        extra=list(ctx.args),
        no_cache=no_cache,
        shard=shard,
    )
    console.print(f"[bold]harness run[/] → {escape(str(out_dir))}")
    console.print("[dim]$ " + escape(" ".join(args)) + "[/]")
    code = subprocess.call(args)
    if code == NO_TESTS_COLLECTED:
        _nothing_collected(suites, phase or [], ctx.args)
    if shard is not None:  # no verdicts in a shard: the plugin's code says if it recorded all
        console.print(f"shard {shard} → {escape(str(out_dir))}; decide with `harness merge`")
        raise typer.Exit(code)
    _print_run_summary(out_dir, code)
    if out is None:
        _point_latest(out_dir)
    from harness.accounting import ACCOUNT_FILE

    raise typer.Exit(run_exit_code(code, out_dir / ACCOUNT_FILE, fail_on_verdict=fail_on_verdict))


def _run_dir(suites: Path, out: Path | None) -> Path:
    """The run's report directory (``out`` or ``reports/<UTC stamp>``), created; checks
    ``suites`` exists first so a wrong working directory writes nothing."""
    if not suites.exists():
        raise HarnessError(
            f"{suites}: suites directory not found; run from the project root or pass --suites DIR"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = (out or Path("reports") / stamp).resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission: one line, not a traceback
        raise HarnessError(
            f"--out {out_dir}: cannot create the report directory ({exc.strerror}); "
            "pass a directory that can be created or an existing one"
        ) from exc
    return out_dir


def _nothing_collected(suites: Path, phases: Sequence[str], extra: Sequence[str]) -> NoReturn:
    """pytest collected nothing: say which filters were in force, exit 5."""
    err_console.print(
        "[bold red]error:[/] "
        + escape(
            f"pytest collected no tests in {suites} "
            f"(phase filter: {', '.join(phases) or 'none'}; extra args: "
            f"{' '.join(extra) or 'none'}); no gate was decided — check the filters"
        ),
        soft_wrap=True,
    )
    raise typer.Exit(NO_TESTS_COLLECTED)


def run_exit_code(pytest_code: int, account: Path, *, fail_on_verdict: bool = True) -> int:
    """``harness run``'s exit code, from the gate accounting the plugin wrote (``account``).

    The plugin already turned pytest's exit code into the evidence's (0 every selected
    phase passed; 1 a gate is FAIL, INCONCLUSIVE or MISSING; 2 harness error).  Two more
    cases are harness errors here: pytest's internal/usage errors, and a failed test while
    every declared gate passed (a suite test broke outside any gate decision).
    """
    if pytest_code in (0, NO_TESTS_COLLECTED):
        return pytest_code
    if pytest_code != 1:
        return 2
    from harness.accounting import RunAccount

    try:
        acc = RunAccount.model_validate_json(account.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        err_console.print(
            "[bold red]harness error:[/] "
            + escape(f"pytest failed and wrote no gate accounting ({account}); see its output"),
            soft_wrap=True,
        )
        return 2
    if acc.passed:
        err_console.print(
            "[bold red]harness error:[/] a test failed although every declared gate passed "
            "(a suite test broke outside any gate decision); see pytest's output",
            soft_wrap=True,
        )
        return 2
    bad = sum(1 for p in acc.phases for s in p.statuses if s.status != "PASS")
    partial = sum(len(p.not_asked) for p in acc.phases)
    console.print(
        f"{bad} gate status(es) not PASS — verdicts about the subject, see the report"
        + (f"; {partial} gate(s) not asked for (a partial phase is not passed)" if partial else "")
    )
    return 1 if fail_on_verdict else 0


def _worker_args(workers: str) -> list[str]:
    """``-n N --dist loadgroup`` (xdist must be installed), or nothing for ``-n 0``."""
    if workers in ("0", ""):
        return []
    if importlib.util.find_spec("xdist") is None:
        raise HarnessError(
            f"-n {workers}: pytest-xdist is not installed although gate-harness depends on "
            "it; reinstall gate-harness (pip install gate-harness) or pass -n 0"
        )
    # Suites mark each subject with ``xdist_group`` so one worker owns a subject's
    # shared run instead of two workers queueing on its file lock.
    return ["-n", workers, "--dist", "loadgroup"]


def pytest_args(
    *,
    suites: Path,
    out_dir: Path,
    phases: Sequence[str],
    workers: str,
    limit: int | None,
    lane: str,
    model: str | None,
    gates_dir: Path | None,
    baseline: Path | None,
    inconclusive: str,
    sequential: bool,
    extra: Sequence[str],
    progress: bool = True,
    no_cache: bool = False,
    shard: str | None = None,
) -> list[str]:
    """The pytest command line ``harness run`` executes (documented in docs/architecture.md)."""
    args = [sys.executable, "-m", "pytest", str(suites), *_worker_args(workers)]
    args += [
        "--evidence-dir",
        str(out_dir),
        "--junitxml",
        str(out_dir / "junit.xml"),
        "--no-gate-summary",
        "-o",
        "junit_family=xunit1",  # per-testcase <properties> are only valid in xunit1
        "--lane",
        lane,
        "--inconclusive",
        inconclusive,
        "--all-phases",
    ]
    for p in phases:
        args += ["--phase", p]
    if limit is not None:
        args += ["--limit", str(limit)]
    if model is not None:
        args += ["--model", model]
    if gates_dir is not None:
        args += ["--gates-dir", str(gates_dir)]
    if baseline is not None:
        args += ["--baseline", str(baseline)]
    if sequential:
        args.append("--sequential")
    if not progress:
        args.append("--no-gate-progress")
    if no_cache:
        args.append("--no-cache")  # suites/conftest.py: recompute cached artifacts
    if shard is not None:
        args += ["--shard", shard]
    return args + [a for a in extra if a != "--"]


def _print_run_summary(out_dir: Path, code: int) -> None:
    from harness.evidence import EVIDENCE_FILE

    evidence = out_dir / EVIDENCE_FILE
    if not evidence.exists():
        err_console.print(
            "[yellow]"
            + escape(
                f"no gate evidence was written to {out_dir} (pytest exit code {code}); "
                "no test called gate.check"
            )
            + "[/]"
        )
        return
    _print_summary(evidence)
    for name in ("gate-report.md", "junit.xml", "evidence.jsonl"):
        if (out_dir / name).exists():
            console.print(f"  {name}: {out_dir / name}")


def _print_summary(evidence: Path, baseline: Path | None = None) -> None:
    from harness.evidence import read_evidence
    from harness.report.summary import summarize
    from harness.report.terminal import print_summary

    log = read_evidence(evidence)
    for warning in log.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    base = read_evidence(baseline).records if baseline is not None else []
    summaries = summarize(log.records, baseline=base)
    print_summary(console, summaries)
    account = _read_account(log.path.parent)
    if account is not None:
        from harness.report.accounting import account_lines

        for line in account_lines(account):
            console.print(line, markup=False, soft_wrap=True)


def _read_account(directory: Path) -> RunAccount | None:
    """The run's gate accounting beside its evidence (None for evidence written without one)."""
    from harness.accounting import ACCOUNT_FILE, RunAccount

    path = directory / ACCOUNT_FILE
    if not path.exists():
        return None
    try:
        return RunAccount.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(
            f"{path}: not a readable gate accounting ({exc}); re-run the gates"
        ) from exc


def _point_latest(out_dir: Path) -> None:
    """``reports/latest`` → the newest run (best effort; a convenience, not evidence)."""
    from harness.atomic import atomic_symlink

    with contextlib.suppress(HarnessError):
        atomic_symlink(out_dir.parent / "latest", out_dir.name)


# --------------------------------------------------------------------------- report / compare


def _report(
    evidence: Annotated[Path, typer.Argument(help="evidence.jsonl or a report directory.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="A FILE.md to write the report to, or a directory for gate-report.md "
            "(default: beside the evidence). Plots go to plots/ next to the report."
        ),
    ] = None,
    baseline: Annotated[Path | None, typer.Option(help="Baseline evidence for deltas.")] = None,
    plots: Annotated[bool, typer.Option(help="Draw one PNG per phase.")] = True,
) -> None:
    """Re-render gate-report.md (+ plots) from an evidence file and print the summary."""
    from harness.evidence import read_evidence
    from harness.report.writer import write_report

    log = read_evidence(evidence)
    for warning in log.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    base = read_evidence(baseline).records if baseline is not None else []
    target, name = log.path.parent, "gate-report.md"
    if out is not None and out.suffix.lower() == ".md":
        target, name = out.parent, out.name
    elif out is not None:
        target = out
    path = write_report(
        log.records,
        target,
        baseline=base,
        plots=plots,
        account=_read_account(log.path.parent),
        name=name,
    )
    _print_summary(log.path, baseline)
    console.print(f"gate report: {path}")


def _compare(
    base: Annotated[Path, typer.Argument(help="Baseline evidence.jsonl or report directory.")],
    cur: Annotated[Path, typer.Argument(help="Current evidence.jsonl or report directory.")],
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the delta table as markdown here.")
    ] = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when a gate moved PASS → FAIL/INCONCLUSIVE or a metric moved the wrong "
            "way beyond its CI.",
        ),
    ] = False,
) -> None:
    """Delta table between two runs: metric, baseline, current, Δ (paired CI), target, verdict."""
    from harness.evidence import atomic_write_text
    from harness.report.compare import compare_files, render_delta_markdown
    from harness.report.terminal import print_deltas

    rows, warnings = compare_files(base, cur)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    print_deltas(console, rows)
    if markdown is not None:
        atomic_write_text(markdown, render_delta_markdown(rows))
        console.print(f"delta table: {markdown}")
    regressions = [(row, why) for row in rows if (why := row.regression()) is not None]
    for row, why in regressions:
        rec = row.current
        console.print(f"regression: {rec.phase}/{rec.gate} ({rec.subject}): {why}", markup=False)
    if fail_on_regression and regressions:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- power


def _power(
    threshold: Annotated[
        float | None, typer.Option(help="The gate's threshold, e.g. 0.001 (or from --gate).")
    ] = None,
    direction: Annotated[
        DirectionChoice | None,
        typer.Option(help="le: rate must be ≤ threshold; ge: ≥ (or from --gate)."),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(help="One-sided level (default 0.05, or the gate's per-test level α/m)."),
    ] = None,
    true_rate: Annotated[
        list[float] | None, typer.Option("--true-rate", help="Assumed true rate (repeatable).")
    ] = None,
    power: Annotated[float, typer.Option(help="Wanted probability of deciding.")] = 0.8,
    gate_id: Annotated[
        str | None,
        typer.Option(
            "--gate",
            help="A gate id from the gate YAML ('phase/gate' or a unique 'gate'): its required "
            "threshold, direction and per-test level α/m (Bonferroni within its phase).",
        ),
    ] = None,
    gates_dir: Annotated[
        Path, typer.Option("--gates-dir", help="Gate YAML directory for --gate.")
    ] = Path("gates"),
) -> None:
    """How many items a proportion gate needs before it can be decided."""
    from harness.errors import StatsError
    from harness.stats import power as pw

    if gate_id is not None:
        g_threshold, g_direction, g_alpha = _gate_for_power(gate_id, gates_dir)
        threshold = g_threshold if threshold is None else threshold
        direction = g_direction if direction is None else direction
        alpha = g_alpha if alpha is None else alpha
    if threshold is None or direction is None:
        raise StatsError("harness power: pass --threshold and --direction, or --gate ID")
    alpha = 0.05 if alpha is None else alpha
    if not (0.0 < threshold < 1.0):
        raise StatsError(f"--threshold {threshold}: must lie in (0, 1) for a proportion gate")
    edge = threshold if direction is DirectionChoice.LE else 1.0 - threshold
    zero = pw.n_zero_events(edge, alpha=alpha)
    sym = "≤" if direction is DirectionChoice.LE else "≥"
    what = "zero events" if direction is DirectionChoice.LE else "zero failures"
    console.print(
        f"gate: rate {sym} {threshold:g} at one-sided α = {alpha:g} "
        f"(exact binomial / Clopper–Pearson bound)"
    )
    console.print(
        f"n needed with {what} (the best case): [bold]{zero}[/] "
        f"— no smaller sample can PASS this gate whatever it observes"
    )
    if true_rate:
        console.print(
            _power_table(true_rate, threshold, direction=direction, alpha=alpha, power=power)
        )


def _power_table(
    true_rates: Sequence[float],
    threshold: float,
    *,
    direction: DirectionChoice,
    alpha: float,
    power: float,
) -> Table:
    """Per assumed true rate: the n that decides the gate with probability ≥ ``power``."""
    from rich.table import Table

    from harness.stats import power as pw

    table = Table(title=f"n to decide with probability ≥ {power:.0%}")
    table.add_column("true rate", justify="right")
    table.add_column("n needed", justify="right")
    table.add_column("expected verdict")
    for rate in true_rates:
        n = pw.n_for_proportion(rate, threshold, alpha=alpha, power=power)
        passes = rate <= threshold if direction is DirectionChoice.LE else rate >= threshold
        verdict = "— (on the threshold)" if n is None else ("PASS" if passes else "FAIL")
        table.add_row(f"{rate:g}", "never" if n is None else str(n), verdict)
    return table


def _gate_for_power(gate_id: str, gates_dir: Path) -> tuple[float, DirectionChoice, float]:
    """(required threshold, direction, per-test level α/m) of a gate in the YAML."""
    from harness.gate import Gate
    from harness.spec import load_phases

    phase_name, _, gid = gate_id.rpartition("/")
    found = [
        (phase, g)
        for phase in load_phases(gates_dir)
        if phase_name in ("", phase.phase)
        for g in phase.gates
        if g.id == gid
    ]
    if len(found) != 1:
        where = "no gate" if not found else f"{len(found)} gates"
        raise HarnessError(
            f"--gate {gate_id}: {where} of that id in {gates_dir}; write it as 'phase/gate'"
        )
    phase, spec = found[0]
    bound = Gate(phase, spec)
    console.print(
        f"gate {phase.phase}/{spec.id}: metric {spec.metric}, per-test level "
        f"α/m = {bound.alpha:g}/{bound.family_size} = {bound.alpha_decision:g}"
    )
    return spec.tiers.required[1], DirectionChoice(str(spec.direction)), bound.alpha_decision


# --------------------------------------------------------------------------- app


def _mount(app: typer.Typer, wanted: str | None) -> None:
    """Mount sub-apps: import only the invoked one; list the others without importing them."""
    for sub in SUBAPPS:
        if sub.name == wanted:
            app.add_typer(_load_subapp(sub), name=sub.name, help=sub.help)
        elif _module_exists(sub.module):
            app.add_typer(typer.Typer(help=sub.help), name=sub.name, help=sub.help)


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _load_subapp(sub: SubApp) -> typer.Typer:
    try:
        mod = importlib.import_module(sub.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and sub.module.startswith(exc.name):
            return _unavailable(sub, f"module '{sub.module}' is not part of this installation")
        raise HarnessError(
            f"harness {sub.name}: importing {sub.module} failed: {exc}; install the missing "
            "dependency (see pyproject extras)"
        ) from exc
    except Exception as exc:
        raise HarnessError(
            f"harness {sub.name}: importing {sub.module} failed with "
            f"{type(exc).__name__}: {exc} — this is a bug in {sub.module}"
        ) from exc
    for attr in sub.attrs:
        obj: Any = getattr(mod, attr, None)
        if isinstance(obj, typer.Typer):
            return obj
        if callable(obj):
            wrapper = typer.Typer(help=sub.help)
            wrapper.command(sub.name)(obj)
            return wrapper
    raise HarnessError(
        f"harness {sub.name}: {sub.module} defines none of {', '.join(sub.attrs)}; "
        "expose a typer.Typer named 'app'"
    )


def _unavailable(sub: SubApp, why: str) -> typer.Typer:
    stub = typer.Typer(help=f"{sub.help} (unavailable: {why})", invoke_without_command=True)

    @stub.callback()
    def _missing() -> None:
        raise HarnessError(f"harness {sub.name} is unavailable: {why}")

    return stub


def build_app(wanted: str | None = None) -> typer.Typer:
    """The typer app; ``wanted`` is the sub-command about to run (its sub-app gets imported)."""
    application = typer.Typer(
        name="harness",
        help="Turn ML acceptance criteria into statistical evidence (phase gates).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    application.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(_run)
    application.command("report")(_report)
    application.command("compare")(_compare)
    application.command("power")(_power)
    application.command("merge")(merge_command)
    application.command("trend")(trend_command)
    _mount(application, wanted)
    return application


def _wanted(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


app = build_app()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: a HarnessError is one red line and exit code 2, no traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        application = build_app(_wanted(args))
        application(args=args, prog_name="harness")
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # `python -m harness.cli ...` behaves like the `harness` command
    main()
