"""``harness cb-data``: the data commands of :mod:`trainers.circuit_breaker.sources.cli`
plus ``run``, which trains on external sources and decides Gate 3 per source.

``run`` lives here, not in the trainer's CLI, because its per-source breakdown is an
evaluator (:func:`harness.evaluators.circuit_breaker_sources.source_breakdown`) and
trainers never import evaluators.  This module composes one Typer app from the trainer's
commands (agentdojo, asb, check) and ``run``, so the command line is unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from harness.errors import HarnessError
from harness.evaluators.circuit_breaker_sources import source_breakdown
from trainers.circuit_breaker.sources.cli import app as _data_app

if TYPE_CHECKING:
    from trainers.circuit_breaker.pipeline import PhaseRun, PhaseRunConfig

__all__ = ["EXTERNAL_MAX_LENGTH", "app", "run_external"]

app = typer.Typer(
    help="Circuit-breaker data: export AgentDojo/ASB cases as samples, check Gate 1, "
    "train on them and break Gate 3 down per source.",
    no_args_is_help=True,
)
app.registered_commands.extend(_data_app.registered_commands)
_console = Console(stderr=True)


#: ``CircuitBreakerConfig.max_length`` of ``cb-data run``: the tiny model's 1,024 positions.
#: Rows longer than the model are skipped, so every row the run keeps is trained whole
#: (ASB needs ≥ 405 with the tiny tokenizer; the default 320 would cut 3,594 of its rows).
EXTERNAL_MAX_LENGTH = 1024


def _cache_root(value: Path | None) -> Path:
    """The circuit-breaker suite's cache (settings' ``circuit_breaker_dir``): shared models."""
    from harness.settings import get_settings

    return value if value is not None else get_settings().circuit_breaker_dir


def _counts_table(sources: dict[str, dict[str, object]]) -> str:
    keys = (
        ("rows", "rows read"),
        ("skipped_overlong", "skipped: longer than the model"),
        ("baseline_sft", "baseline SFT rows"),
        ("ds_candidates", "Ds candidates"),
        ("ds_kept", "Ds kept (baseline true failures)"),
        ("ds_dropped", "Ds dropped"),
        ("dr", "Dr"),
        ("dr_adversarial_safe", "  of which adversarial-safe"),
        ("eval_attacks", "eval attacks"),
        ("eval_benign", "eval benign"),
    )
    names = list(sources)
    lines = ["| count | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in keys:
        cells = [str(sources[n].get(key, "—")) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _external_config(source: list[Path], *, max_length: int) -> PhaseRunConfig:
    """The embedded-default phase config plus ``source``'s samples at ``max_length`` tokens."""
    from dataclasses import replace

    from trainers.circuit_breaker.pipeline import ExternalSource, PhaseRunConfig

    base = PhaseRunConfig()
    return replace(
        base,
        cb=replace(base.cb, max_length=max_length),
        sources=tuple(ExternalSource.from_path(p) for p in source),
    )


def _run_fields(run: PhaseRun) -> dict[str, Any]:
    """What cb-external.json keeps of the phase run (the rest is in the run's own file)."""
    return {
        "sources": run.sources,
        "counts": run.counts,
        "format_problems": len(run.format_problems),
        "n_audited": run.n_audited,
        "model_digests": run.model_digests,
        "data_digest": run.data_digest,
        "wall_s": run.wall_s,
    }


@app.command("run")
def run_external(
    source: Annotated[
        list[Path], typer.Option("--source", help="samples JSONL to add (repeatable)")
    ],
    out: Annotated[Path, typer.Option(help="directory for cb-external.json")] = Path(
        "reports/cb-external"
    ),
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="run cache (default $HARNESS_CACHE_DIR/circuit_breaker, i.e. "
            "~/.cache/gate-harness/circuit_breaker — the phase's own, so models are shared)"
        ),
    ] = None,
    max_length: Annotated[
        int,
        typer.Option(help="circuit-breaker max_length (tokens kept per training sample)"),
    ] = EXTERNAL_MAX_LENGTH,
    gates_file: Annotated[
        Path | None,
        typer.Option(help="gate specs for the breakdown (default gates/circuit_breaker.yaml)"),
    ] = None,
) -> None:
    """Train and evaluate the circuit-breaker phase on the synthetic world plus external sources.

    Each source's train rows are split by a hash of their id between the
    vulnerable baseline and circuit-breaker training; its eval rows join the
    eval set; rows longer than the model are skipped and counted.  Every other
    setting is the embedded default.  Writes OUT/cb-external.json and prints
    Gate 3 per source and arm.  Not a gate run: exit 0 when it completes, 2 on errors.
    """
    import time

    from trainers.base import write_json_atomic
    from trainers.circuit_breaker.pipeline import run_phase

    t0 = time.perf_counter()

    def progress(message: str) -> None:
        _console.print(f"[{time.perf_counter() - t0:7.1f}s] {message}", markup=False)

    try:
        cfg = _external_config(source, max_length=max_length)
        root = _cache_root(cache_dir)
        progress(
            f"cb-data run: config {cfg.digest()[:12]} (max_length {max_length}), cache {root}; "
            f"sources {', '.join(f'{s.path} ({s.sha256[:12]})' for s in cfg.sources)}"
        )
        run = run_phase(cfg, cache_dir=root, progress=progress)
        progress("cb-data run: per-source Gate 3 breakdown")
        breakdown = source_breakdown(run, gates_file=gates_file)
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    wall = time.perf_counter() - t0
    path = out / "cb-external.json"
    write_json_atomic(
        path,
        {
            "config": cfg.to_dict(),
            "config_digest": cfg.digest(),
            "phase_run_file": str(root / f"cb-phase-{cfg.digest()[:12]}.json"),
            **_run_fields(run),
            "command_wall_s": round(wall, 1),
            "breakdown": breakdown.to_dict(),
        },
    )
    sys.stdout.write(_counts_table(run.sources) + "\n\n" + breakdown.markdown() + "\n")
    progress(f"cb-data run: wrote {path} ({wall:.0f} s)")
