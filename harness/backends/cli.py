"""``harness replay``: record generations for the replay lane and inspect recordings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.errors import HarnessError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Record and inspect the replay lane.")
console = Console(highlight=False, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Record and inspect replay recordings (JSONL of key, request, generation)."""


@app.command()
def record(
    model: Annotated[
        str,
        typer.Option(help="Checkpoint dir, http://host:port/v1#name, or vllm:<model>."),
    ],
    requests: Annotated[
        Path, typer.Option(help="JSONL file, one GenerationRequest per line.", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Recording file to create or merge into.")],
    batch_size: Annotated[int, typer.Option(min=1, help="HF batch size.")] = 8,
) -> None:
    """Generate REQUESTS with a real backend and merge the answers into OUT."""
    from harness.backends.factory import open_generator
    from harness.backends.replay import load_requests
    from harness.backends.replay import record as do_record

    try:
        reqs = load_requests(requests)
        gen = open_generator(model, batch_size=batch_size)
        console.print(f"recording {len(reqs)} requests from {gen.identity.name} …")
        total = do_record(gen, reqs, out, source=model)
    except HarnessError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{out}: {total} recorded generations ({len(reqs)} from this run)")


@app.command()
def show(recording: Annotated[Path, typer.Argument(help="Recording file.")]) -> None:
    """Summarise a recording: entries per model identity."""
    from harness.backends.replay import load_recordings

    try:
        recs = load_recordings(recording)
    except HarnessError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    per = Counter((r.generation.model.name, r.generation.model.digest()[:12]) for r in recs)
    for (name, digest), n in sorted(per.items()):
        console.print(f"{name} @ {digest}: {n} generations")
