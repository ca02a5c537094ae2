"""AgentDojo 0.1.35 cases as circuit-breaker samples (harness side of the export).

agentdojo pins ~70 packages the harness environment must not take, so the
cases are built by ``harness/lanes/agentdojo_export.py`` running in the
AgentDojo client venv (``scripts/setup_agentdojo.sh``); this module runs that
script, validates every row it wrote against :class:`~..data.Sample` (an
invalid row raises :class:`~harness.errors.DataValidationError` naming the
file, line and field), and writes the validated samples atomically.

The raw rows file is kept next to the output (``<out>.raw.jsonl``) with the
per-suite counts (``<out>.stats.json``): what was skipped, and why, is part of
the evidence — e.g. 0.1.35 ships workspace injection tasks 6-13 without
ground-truth calls, so those 320 pairs cannot yield a harmful completion.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

from ..data import Sample, dump_jsonl, load_jsonl

__all__ = ["EXPORT_SCRIPT", "AgentDojoExport", "export_agentdojo"]

EXPORT_SCRIPT = Path(__file__).resolve().parents[3] / "harness" / "lanes" / "agentdojo_export.py"


@dataclass(frozen=True)
class AgentDojoExport:
    """The validated samples, where they were written, and per-suite counts of the export."""

    samples: list[Sample]
    path: Path
    raw_path: Path
    stats: dict[str, dict[str, int]]


def export_agentdojo(
    out: Path,
    *,
    suites: Sequence[str] = (),
    venv: Path | None = None,
    progress: Callable[[str], None] = print,
    timeout_s: float = 3600.0,
) -> AgentDojoExport:
    """Run the export in the AgentDojo venv and validate its rows; raises HarnessError."""
    from harness.agentdojo_venv import find_agentdojo_python

    python = find_agentdojo_python(venv)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_name(out.name.removesuffix(".jsonl") + ".raw.jsonl")
    stats_path = out.with_name(out.name.removesuffix(".jsonl") + ".stats.json")
    cmd = [str(python), str(EXPORT_SCRIPT), "--out", str(raw), "--stats", str(stats_path)]
    for suite in suites:
        cmd += ["--suite", suite]
    progress(f"agentdojo export: running {EXPORT_SCRIPT.name} in {python.parents[1]}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tail: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        line = line.rstrip("\n")
        tail = [*tail[-30:], line]
        if line.startswith("agentdojo export:"):
            progress(line)
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        raise HarnessError(f"agentdojo export did not finish in {timeout_s:.0f} s") from exc
    if rc != 0:
        raise HarnessError(
            f"agentdojo export failed (exit {rc}): "
            + "\n".join(tail[-15:])
            + f"\ncommand: {' '.join(cmd)}"
        )
    samples = load_jsonl(raw)  # names file, line and field of any invalid row
    dump_jsonl(samples, out)
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    return AgentDojoExport(samples=samples, path=out, raw_path=raw, stats=stats)
