"""``harness data code-edit`` — ingest published code-edit sets, validate and count them.

``ingest SOURCE FILE`` normalises a CommitPackFT / EditPackFT / CanItEdit /
HumanEvalFix file (as published: JSONL, JSONL.gz or Parquet) into the processed
layout; ``stats`` validates every row, checks split leakage and prints the
counts as JSON.  The embedded synthetic set is built by
``python -m trainers.code_edit.generate`` (it needs the trainers package).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harness.data.code_edit.leakage import DEFAULT_THRESHOLD, check_leakage
from harness.data.code_edit.loaders import LOADERS
from harness.data.code_edit.shape import shape_parity
from harness.data.code_edit.store import (
    dataset_stats,
    default_root,
    read_processed,
    schema_violations,
    write_processed,
)
from harness.errors import HarnessError

__all__ = ["app"]

app = typer.Typer(help="Code-edit data: ingest published sets, validate, stats, leakage.")

_Root = Annotated[
    Path | None, typer.Option(help="processed root (default $HARNESS_DATA_DIR/code_edit/processed)")
]


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help=f"one of {', '.join(LOADERS)}")],
    path: Annotated[Path, typer.Argument(help="the source file as published")],
    root: _Root = None,
) -> None:
    """Normalise one published file into ``<root>/{train,dev,test}/<source>.jsonl``."""
    if source not in LOADERS:
        typer.echo(f"error: unknown source {source!r}; one of {', '.join(LOADERS)}", err=True)
        raise typer.Exit(code=2)
    try:
        rows = list(LOADERS[source](path))
        meta = write_processed(
            rows, root=root, name=source, generator=f"loader:{source}", sources={source: str(path)}
        )
    except HarnessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(meta.counts, indent=2))


@app.command()
def stats(
    root: _Root = None,
    threshold: Annotated[float, typer.Option(help="near-duplicate similarity")] = DEFAULT_THRESHOLD,
) -> None:
    """Validate every row, check split leakage, print counts/languages/bytes as JSON.

    ``shapes`` gives rows per split and (source, rule, pre-code shape) cell and the
    held-out cells no train row fills (``shape_gaps``, the gate of the same name);
    gaps are reported, not an exit status (exit 1 stays violations or leakage).
    """
    base = root or default_root()
    problems = schema_violations(root=base)
    out: dict[str, object] = {"root": str(base), "schema_violations": len(problems)}
    if problems:
        out["first_problems"] = problems[:10]
    else:
        try:
            rows = read_processed(root=base)
        except HarnessError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        leak = check_leakage(rows, threshold=threshold)
        out |= dataset_stats(rows).as_dict()
        out["split_leakage"] = leak.count
        out["leaking_pairs"] = [vars(p) for p in leak.pairs[:10]]
        out["shapes"] = shape_parity(rows).as_dict()
    typer.echo(json.dumps(out, indent=2))
    if problems or out.get("split_leakage"):
        raise typer.Exit(code=1)


@app.command("filter")
def filter_cmd(
    raw: Annotated[Path, typer.Argument(help="raw teacher trajectories (TeacherStep JSONL)")],
    out: Annotated[Path, typer.Option(help="clean SRL dataset directory to publish")],
    root: _Root = None,
) -> None:
    """Keep the teacher steps the Docker sandbox verifies; print per-source stats as JSON.

    Raw steps come from ``python -m trainers.code_edit.teacher``; the records they refer
    to are read from the processed root.  Writes ``train.jsonl``, ``dev.jsonl`` and
    ``stats.json`` under ``--out`` in one atomic publish.
    """
    from harness.evaluators.code_edit_trajectories import filter_trajectories

    try:
        rows = read_processed(root=root or default_root())
        report = filter_trajectories(raw, rows, out_dir=out)
    except HarnessError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(report.as_dict(), indent=1))
