"""``harness merge`` and ``harness trend``: commands for runs spread over machines and nights.

Import-light (typer only at import time): :mod:`harness.cli` registers these
commands on every start, and the statistics stack loads only when one runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["merge_command", "trend_command"]

console = Console(highlight=False)


def merge_command(
    shard_dirs: Annotated[
        list[Path],
        typer.Argument(help="The --out directories of every `harness run --shard I/N` (1..N)."),
    ],
    out: Annotated[
        Path, typer.Option(help="Directory for evidence.jsonl, gate-report.md, junit.xml.")
    ] = Path("reports/merged"),
    fail_on_verdict: Annotated[
        bool,
        typer.Option(help="Exit 1 when a gate is FAIL/INCONCLUSIVE/MISSING (default)."),
    ] = True,
) -> None:
    """Decide every gate once on the union of its shards (docs/scaling.md).

    Checks first that shards 1..N are all present exactly once and agree on specs,
    data, model, code and options (any mismatch is an error naming it); then
    estimates, decides, applies Holm/BH over the merged family and writes the report.
    Exit codes as ``harness run``: 0 all PASS, 1 a gate not PASS, 2 harness error.
    """
    from harness.merge import merge_shards

    result = merge_shards(shard_dirs, out.resolve())
    from harness.report.accounting import account_lines
    from harness.report.summary import summarize
    from harness.report.terminal import print_summary

    print_summary(console, summarize(result.records))
    for line in account_lines(result.account):
        console.print(line, markup=False, soft_wrap=True)
    for name in ("gate-report.md", "junit.xml", "evidence.jsonl"):
        console.print(f"  {name}: {escape(str(result.out / name))}")
    code = result.exit_code
    raise typer.Exit(code if code != 1 or fail_on_verdict else 0)


def trend_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Evidence files or report directories (one per night), or one directory "
            "holding the nightly report directories."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Directory for trend.md and trend.png.")] = Path(
        "reports/trend"
    ),
    plot: Annotated[bool, typer.Option(help="Draw trend.png.")] = True,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when the newest night has a flag (verdict PASS → not PASS, or a "
            "significant paired regression vs the night before).",
        ),
    ] = False,
) -> None:
    """Per gate: estimate and bounds over the nights, each verdict, and regression flags."""
    from harness.report.trend import write_trend
    from harness.trend import build_trends, find_nights

    nights = find_nights(runs)
    series = build_trends(nights)
    md, png = write_trend(series, nights, out.resolve(), plot=plot)
    newest = nights[-1].label if nights else None
    flagged = 0
    for s in series:
        last = s.points[-1] if s.points else None
        for p in s.points:
            for f in p.flags:
                console.print(f"flag: {s.label} on {p.night} — {f.kind}: {f.text}", markup=False)
        if last is not None and last.night == newest and last.flags:
            flagged += 1
    console.print(f"{len(nights)} night(s), {len(series)} gate series; trend table: {md}")
    if png is not None:
        console.print(f"trend plot: {png}")
    if fail_on_regression and flagged:
        raise typer.Exit(1)
