"""``harness models``: build the locally trained tiny models (there is no model hub here)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.errors import HarnessError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Build and train the local tiny models.")
console = Console(highlight=False, soft_wrap=True)


class Kind(StrEnum):
    TINY_CODE = "tiny-code"
    TINY = "tiny"


@app.callback()
def _group() -> None:
    """Build tiny real models locally (cached by config digest)."""


@app.command()
def build(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="tiny-code: briefly trained code model; tiny: untrained control model."
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (tiny-code).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed for data order and init.")] = 0,
    threads: Annotated[
        int, typer.Option(min=1, help="torch CPU threads (1 is fastest on a busy 2-core box).")
    ] = 1,
) -> None:
    """Build KIND into OUT (default ./models/<kind>); reused when already built."""
    import torch

    from trainers.tiny import (
        TinyCodeTrainConfig,
        TinyModelConfig,
        build_tiny_model,
        train_tiny_code,
    )

    torch.set_num_threads(threads)
    try:
        if kind is Kind.TINY_CODE:
            cfg = TinyCodeTrainConfig(seed=seed)
            if steps is not None:
                cfg = cfg.model_copy(update={"max_steps": steps})
            target = out or Path("models") / "tiny-code"
            path = train_tiny_code(cfg, out_dir=target, progress=console.print)
        else:
            root = out or Path("models")
            path = build_tiny_model(TinyModelConfig(seed=seed), out_dir=root)
    except HarnessError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"model ready: {path}")
