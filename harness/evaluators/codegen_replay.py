"""The code-generation phase's replay fixture: record it from a real model, describe it.

Why a recorder of its own: the fixture must hold exactly the requests the
phase will send, or the replay lane would miss on the first one.  Rather than
re-deriving the request list, :func:`record_codegen` runs the phase's own
evaluator (:func:`~harness.evaluators.codegen.run_codegen` with a
:class:`~harness.evaluators.codegen.ModelSubject`) on the fixture's task
subset against the *real* backend, executes the candidates in the sandbox as
the phase does, and captures every (request, generation) pair on the way.  The
fixture therefore holds real model outputs, and the replay lane executes them
again in the sandbox — nothing about a verdict is recorded, only what the
model said.

Files: ``fixtures/replay/codegen.jsonl`` (the recordings) and
``codegen.manifest.json`` (task subset, deep subset, seed, config, the model's
identity and build manifest including its training-corpus digest and
contamination summary, and the command that re-records it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_json, atomic_write_jsonl
from harness.backends.base import Generation, GenerationRequest, Generator, ModelIdentity
from harness.backends.replay import Recording, manifest_path, recording_key
from harness.errors import BackendError
from harness.evaluators.codegen import CodegenConfig, ModelSubject, run_codegen
from harness.evaluators.humaneval import dataset_path, file_digest, load_tasks
from sandbox.base import Sandbox

__all__ = [
    "DEFAULT_DEEP",
    "DEFAULT_RECORDING",
    "DEFAULT_TASKS",
    "CapturingGenerator",
    "record_codegen",
    "record_command",
]

DEFAULT_RECORDING = Path("fixtures/replay/codegen.jsonl")
#: 40 tasks at n = 1 (pass@1), the first 12 of them with the whole n = 1, 4, 16 ladder:
#: every codegen gate that generates is exercised, and the file stays ~200 kB.
DEFAULT_TASKS = 40
DEFAULT_DEEP = 12


def record_command(model: str, out: Path | str, *, tasks: int, deep: int, seed: int) -> str:
    """The exact command that re-records the fixture (quoted by every replay miss)."""
    return (
        f"harness replay record --phase codegen --model {model} --out {out} "
        f"--tasks {tasks} --deep-tasks {deep} --seed {seed}"
    )


class CapturingGenerator:
    """Pass requests to a real backend and keep every (request, generation) pair."""

    def __init__(self, inner: Generator) -> None:
        self._inner = inner
        self.pairs: list[tuple[GenerationRequest, Generation]] = []

    @property
    def identity(self) -> ModelIdentity:
        return self._inner.identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        gens = list(self._inner.generate(requests))
        for req, gen in zip(requests, gens, strict=True):
            if gen.lane != "real" or gen.cached:
                raise BackendError(
                    f"replay record: generation {gen.request_id!r} came from lane {gen.lane!r}"
                    f"{' (cache)' if gen.cached else ''}; record from a real, uncached backend"
                )
            self.pairs.append((req, gen))
        return gens


def _build_manifest(model: str) -> dict[str, Any]:
    """The model directory's build manifest (corpus digest, contamination), if it has one."""
    path = Path(model) / "tiny_build.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def record_codegen(
    generator: Generator,
    *,
    model: str,
    out: Path | str,
    sandbox: Sandbox,
    tasks: int = DEFAULT_TASKS,
    deep: int = DEFAULT_DEEP,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the codegen phase's model subject on the fixture subset and record what it said.

    Replaces ``out`` (a re-record is a new fixture, not a merge) and writes its
    manifest; returns the manifest.
    """
    if not 1 <= deep <= tasks:
        raise BackendError(f"--deep-tasks {deep} must be between 1 and --tasks {tasks}")
    subset = load_tasks(limit=tasks)
    cfg = CodegenConfig(seed=seed, deep_tasks=deep)
    capture = CapturingGenerator(generator)
    run = run_codegen(
        ModelSubject(capture, cfg),
        subset,
        sandbox,
        cfg,
        data_digest=file_digest(dataset_path()),
        progress=progress,
    )
    recs = [
        Recording(key=recording_key(g.model, r), source=model, request=r, generation=g)
        for r, g in capture.pairs
    ]
    target = Path(out)
    # a re-record replaces the fixture: entries of an older model must not linger in it
    by_key = {r.key: r for r in recs}
    atomic_write_jsonl(target, (by_key[k].model_dump_json() for k in sorted(by_key)))
    first = [t.first_pass for t in run.tasks]
    manifest: dict[str, Any] = {
        "phase": "codegen",
        "record_command": record_command(model, out, tasks=tasks, deep=deep, seed=seed),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": [t.task_id for t in subset],
        "deep_tasks": deep,
        "seed": seed,
        "config": cfg.to_dict(),
        "requests": len(recs),
        "samples": sum(len(g.texts) for _, g in capture.pairs),
        "model": {
            "source": model,
            "identity": generator.identity.model_dump(mode="json"),
            "identity_digest": generator.identity.digest(),
            "build": _build_manifest(model),
        },
        "sandbox": sandbox.describe(),
        "at_record_time": {
            "first_sample_passed": sum(1 for f in first if f == 0),
            "tasks": len(first),
            "note": "informational; the replay lane re-executes every recorded sample",
        },
        "libraries": _library_versions(),
    }
    atomic_write_json(manifest_path(target), manifest, indent=1)
    return manifest
