"""``harness replay``: record generations for the replay lane and inspect recordings."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.backends.base import Generator

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Record and inspect the replay lane.")
console = Console(highlight=False, soft_wrap=True)


@app.callback()
def _group() -> None:
    """Record and inspect replay recordings (JSONL of key, request, generation)."""


class PhaseChoice(StrEnum):
    CODEGEN = "codegen"


@app.command()
def record(
    model: Annotated[
        str,
        typer.Option(help="Checkpoint dir, http://host:port/v1#name, or vllm:<model>."),
    ],
    out: Annotated[Path, typer.Option(help="Recording file to create or merge into.")],
    requests: Annotated[
        Path | None,
        typer.Option(help="JSONL file, one GenerationRequest per line.", exists=True),
    ] = None,
    phase: Annotated[
        PhaseChoice | None,
        typer.Option(
            help="Record a phase's own requests (runs its evaluator on the fixture subset, "
            "executes in the sandbox) and write <out stem>.manifest.json; replaces OUT."
        ),
    ] = None,
    tasks: Annotated[int, typer.Option(min=1, help="--phase codegen: first N tasks.")] = 40,
    deep_tasks: Annotated[
        int, typer.Option(min=1, help="--phase codegen: tasks with the n = 1, 4, 16 ladder.")
    ] = 12,
    seed: Annotated[int, typer.Option(help="--phase codegen: harness seed.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="HF batch size.")] = 8,
) -> None:
    """Generate with a real backend and write the answers into OUT (REQUESTS or a --phase)."""
    from harness.backends.factory import open_generator
    from harness.backends.replay import load_requests
    from harness.backends.replay import record as do_record

    if (requests is None) == (phase is None):
        console.print("[red]error:[/] give exactly one of --requests FILE or --phase codegen")
        raise typer.Exit(2)
    try:
        reqs = load_requests(requests) if requests is not None else []  # bad input first
        gen = open_generator(model, batch_size=batch_size)
        if phase is not None:
            _record_phase(gen, model=model, out=out, tasks=tasks, deep=deep_tasks, seed=seed)
            return
        console.print(f"recording {len(reqs)} requests from {gen.identity.name} …")
        total = do_record(gen, reqs, out, source=model)
    except HarnessError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{out}: {total} recorded generations ({len(reqs)} from this run)")


def _record_phase(
    gen: Generator, *, model: str, out: Path, tasks: int, deep: int, seed: int
) -> None:
    """``--phase codegen``: run the phase's model subject on the subset and record it."""
    from harness.evaluators.codegen_replay import record_codegen
    from sandbox.docker_pool import DockerSandbox

    console.print(f"recording codegen ({tasks} tasks, {deep} with n = 16) from {model} …")
    with DockerSandbox() as box:
        manifest = record_codegen(
            gen,
            model=model,
            out=out,
            sandbox=box,
            tasks=tasks,
            deep=deep,
            seed=seed,
            progress=lambda done, total: console.print(f"  {done}/{total} tasks"),
        )
    console.print(
        f"{out}: {manifest['requests']} requests, {manifest['samples']} samples; "
        f"manifest {out.with_name(out.stem + '.manifest.json')}"
    )


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
