"""``harness calibrate``: run the Monte-Carlo calibration and print the table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from harness.calibrate.core import CalibrationTable, _fmt, _rate, run_calibration

__all__ = ["app", "render"]


def render(table: CalibrationTable, console: Console | None = None) -> None:
    """Print the calibration table with rich."""
    console = console or Console()
    out = Table(title=f"Monte-Carlo calibration (reps={table.reps}, seed={table.seed})")
    for col in (
        "family",
        "method",
        "n",
        "truth",
        "false-PASS ≥",
        "false-PASS ≤",
        "limit α+2SE",
        "coverage",
        "ok",
        "notes",
    ):
        out.add_column(col)
    for r in table.rows:
        out.add_row(
            r.family,
            r.method,
            str(r.n),
            f"{r.truth:.4g}",
            _rate(r.false_pass_ge),
            _rate(r.false_pass_le),
            f"{r.limit:.4f}",
            _rate(r.coverage),
            "yes" if r.ok else "[red]NO[/red]",
            ", ".join(f"{k}={_fmt(v)}" for k, v in r.extra.items()),
        )
    console.print(out)


app = typer.Typer(help="Monte-Carlo calibration of the gate statistics.")


@app.callback(invoke_without_command=True)
def calibrate(
    reps: Annotated[int, typer.Option(help="simulated data sets per family")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    family: Annotated[
        list[str] | None, typer.Option(help="family to run (repeatable); default all")
    ] = None,
    small: Annotated[bool, typer.Option(help="smaller sample sizes (quick check)")] = False,
    markdown: Annotated[bool, typer.Option(help="print a markdown table instead")] = False,
) -> None:
    """Run the calibration and print the table; exit 1 if any family misses its claim."""
    table = run_calibration(reps=reps, seed=seed, families=family, small=small)
    if markdown:
        typer.echo(table.to_markdown())
    else:
        render(table)
    if not table.ok:
        raise typer.Exit(code=1)
