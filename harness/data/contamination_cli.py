"""``harness data contamination``: 13-gram overlap of a training corpus with a benchmark.

Users run it on their own training data before trusting a benchmark score::

    harness data contamination --train my_corpus.jsonl --bench humaneval
    harness data contamination --train models/tiny-code/train_corpus.jsonl --bench humaneval \\
        --json reports/contamination.json --fail-above 1

It prints the share of contaminated benchmark items and the per-item overlap
(every item with ``--all``, else the contaminated ones), writes the full
report as JSON with ``--json``, and exits 1 when more than ``--fail-above``
items are contaminated (2 on bad input).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.atomic import atomic_write_json
from harness.data.contamination import (
    NGRAM_N,
    ItemOverlap,
    bench_items,
    check_contamination,
    read_corpus,
)
from harness.errors import HarnessError

__all__ = ["contamination"]

_console = Console(highlight=False, soft_wrap=True)


def _overlap_table(rows: Sequence[ItemOverlap], *, title: str, n: int) -> Table:
    """One row per benchmark item: its n-grams, how many the corpus has, and a first match."""
    table = Table(title=title)
    for col in ("item", f"{n}-grams", "matched", "share", "first match"):
        table.add_column(
            col, justify="right" if col in (f"{n}-grams", "matched", "share") else "left"
        )
    for item in rows:
        table.add_row(
            item.item_id,
            str(item.ngrams),
            str(item.matched),
            f"{item.share:.1%}",
            escape((item.example or "")[:60]),
        )
    return table


def contamination(
    train: Annotated[
        Path,
        typer.Option(
            help="Training corpus: JSONL (one document per line, text in --field), a directory "
            "of .py/.txt/.md files, or one text file."
        ),
    ],
    bench: Annotated[str, typer.Option(help="Benchmark to check against: humaneval.")] = (
        "humaneval"
    ),
    field: Annotated[str, typer.Option(help="JSONL field holding the text.")] = "text",
    n: Annotated[int, typer.Option(min=1, help="n-gram length in words.")] = NGRAM_N,
    fields: Annotated[
        str,
        typer.Option(help="Benchmark fields that make an item's text, comma-separated."),
    ] = "prompt,canonical_solution",
    show_all: Annotated[
        bool, typer.Option("--all", help="List every item, not only contaminated ones.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full report (every item) here.")
    ] = None,
    fail_above: Annotated[
        int | None,
        typer.Option(min=0, help="Exit 1 when more than this many items are contaminated."),
    ] = None,
) -> None:
    """Per-item 13-gram overlap between TRAIN and a benchmark, and the contaminated share."""
    try:
        items = bench_items(bench, fields=[f.strip() for f in fields.split(",") if f.strip()])
        report = check_contamination(read_corpus(train, field=field), items, bench=bench, n=n)
    except HarnessError as exc:
        _console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if json_out is not None:
        payload = {**report.model_dump(mode="json"), "summary": report.summary()}
        atomic_write_json(json_out, payload, indent=1, sort_keys=False)
    rows = report.items if show_all else report.contaminated
    if rows:
        title = f"{bench}: {n}-gram overlap with {train} ({report.train_docs} documents)"
        _console.print(_overlap_table(rows, title=title, n=n))
    bad = len(report.contaminated)
    _console.print(
        f"{bad} of {len(report.items)} {bench} items contaminated ({report.share:.1%}); "
        f"corpus digest {report.train_digest}"
        + (f"; report: {json_out}" if json_out is not None else "")
    )
    if fail_above is not None and bad > fail_above:
        _console.print(f"[red]more than {fail_above} contaminated item(s)[/]")
        raise typer.Exit(1)
