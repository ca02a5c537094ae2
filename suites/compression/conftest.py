"""Compression phase fixtures: the input model, one cached compression run, one speed measurement.

``compression_input`` decides *what* is compressed (:mod:`trainers.bitnet.inputs`):
``--model DIR`` (any HF causal LM checkpoint, judged on ``--compression-task``), else the
forge phase's champion when it exists and is accurate enough on its task's dev split
(when this run also selected forge, its tests run first — the phase YAML says
``after: [forge]`` — on the same xdist worker), else the embedded tiny model trained here.

``compression_run`` trains/compresses/packs/evaluates once per machine for a given
input and config (cached by content under ``<cache>/compression``; a file lock makes
xdist workers wait for the first one).  ``speed_result`` measures decode speed once
per *session* (a property of the machine now), keyed by xdist's ``testrun_uid``: a 1-prompt
warm-up, a 5-prompt pilot on a separately seeded wide model, whose noise plans how many
prompts the judged measurement times (:mod:`harness.evaluators.compression_timing`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.evaluators.compression_timing import (
    PILOT_PROMPTS,
    pilot_log_speedups,
    plan_prompts,
)
from harness.gate import Gate
from harness.settings import env_option
from trainers.bitnet.config import qat_overrides
from trainers.bitnet.inputs import (
    CompressionInput,
    check_checkpoint,
    default_input,
    task_spec,
)
from trainers.bitnet.pipeline import (
    CompressionRun,
    CompressionRunConfig,
    run_compression,
    run_compression_checkpoint,
)
from trainers.bitnet.qa_task import QATask, load_task
from trainers.bitnet.speed_run import SpeedConfig, measure_speed

#: seed of the pilot's wide model and prompts (the judged ones use seed 0)
PILOT_SEED = 1
#: seed of the warm-up's wide model (one prompt, never judged or planned on)
WARMUP_SEED = 2


def _cache_root(config: pytest.Config) -> Path:
    from harness.settings import get_settings  # HARNESS_CACHE_DIR, docs/settings.md

    value = config.getoption("--cache-dir", default=None)
    return Path(value) if value else get_settings().cache_dir


@pytest.fixture(scope="session")
def compression_config(request: pytest.FixtureRequest) -> CompressionRunConfig:
    """The run's knobs; ``--compression-qat`` overrides BitNetConfig fields (errors name them)."""
    raw = request.config.getoption("--compression-qat") or env_option("HARNESS_COMPRESSION_QAT")
    if not raw:
        return CompressionRunConfig()
    return CompressionRunConfig(bitnet=qat_overrides(str(raw)))


@pytest.fixture(scope="session")
def compression_input(request: pytest.FixtureRequest) -> tuple[CompressionInput, QATask | None]:
    """What is compressed and on which task (module doc); errors name the option and the fix."""
    config = request.config
    model = config.getoption("--model") or env_option("HARNESS_MODEL")
    raw_task = config.getoption("--compression-task") or env_option("HARNESS_COMPRESSION_TASK")
    if model:
        path = Path(str(model)).expanduser()
        check_checkpoint(path)
        task = load_task(task_spec(raw_task))
        return CompressionInput("checkpoint", "--model", str(path), task.name), task
    if raw_task:
        from harness.errors import HarnessError

        raise HarnessError(
            f"--compression-task {raw_task!r} without --model: the task is the accuracy task of "
            "a --model checkpoint (the embedded model and the forge champion carry their own); "
            "pass --model DIR too, or drop --compression-task"
        )
    from harness.phase_order import upstream_status
    from harness.settings import get_settings

    forge = upstream_status(request, ["forge"])["forge"]
    note = f"; forge phase in this run: {forge}"
    return default_input(get_settings().models_dir, _cache_root(config) / "compression", note=note)


@pytest.fixture(scope="session")
def compression_run(
    request: pytest.FixtureRequest,
    compression_config: CompressionRunConfig,
    compression_input: tuple[CompressionInput, QATask | None],
) -> CompressionRun:
    inp, task = compression_input
    cache = _cache_root(request.config) / "compression"
    if task is None or inp.path is None:
        run = run_compression(compression_config, cache_dir=cache, progress=lambda _m: None)
    else:
        run = run_compression_checkpoint(
            Path(inp.path), task, compression_config, cache_dir=cache, progress=lambda _m: None
        )
    run.input = inp.to_dict()
    return run


@pytest.fixture(scope="session")
def speed_result(
    request: pytest.FixtureRequest,
    compression_config: CompressionRunConfig,
    compression_run: CompressionRun,
) -> dict[str, Any]:
    try:
        session = str(request.getfixturevalue("testrun_uid"))
    except pytest.FixtureLookupError:  # xdist not installed: one process, one session
        session = uuid.uuid4().hex
    prompts = [torch.tensor([row]) for row in compression_run.speed_prompts]

    def measure(cfg: SpeedConfig) -> dict[str, Any]:
        return measure_speed(
            cfg,
            fp_dir=Path(compression_run.paths["fp32"]),
            packed_dir=Path(compression_run.paths["packed"]),
            tiny_prompts=prompts,
            cache_dir=_cache_root(request.config) / "compression",
            session=session[:16],
        )

    # how many prompts are judged is planned from a pilot timing of a separately seeded wide
    # model (never judged), so the gate is sized to this machine's noise now
    # (harness.evaluators.compression_timing, docs/compression.md)
    threads = compression_config.threads
    # the first wide timing in a process runs 2-7x slower in both formats (measured: 1.4-2.7x
    # cold vs 4-7x warm, docs/compression.md), so a 1-prompt warm-up (recorded, never used)
    # precedes the pilot; otherwise the pilot would plan every run at the cap
    warm = measure(SpeedConfig(threads=threads, prompts=1, seed=WARMUP_SEED))
    pilot = measure(SpeedConfig(threads=threads, prompts=PILOT_PROMPTS, seed=PILOT_SEED))
    gate = _speed_gate(request.config)
    plan = plan_prompts(
        pilot_log_speedups(pilot),
        threshold=float(gate.spec.tiers.primary),
        alpha=gate.alpha_decision,
    )
    result = measure(SpeedConfig(threads=threads, prompts=plan.n))
    return {
        **result,
        "prompt_plan": {
            **plan.model_dump(mode="json"),
            "warmup_wall_s": warm.get("wall_s"),
            "warmup_seconds_per_token": warm["wide"]["seconds_per_token"],
            "pilot_wall_s": pilot.get("wall_s"),
            "judged_wall_s": result.get("wall_s"),
        },
    }


def _speed_gate(config: pytest.Config) -> Gate:
    """The decode_speedup gate of the phase YAML in use (its threshold and α plan n)."""
    from harness.spec import load_phases

    opt = config.getoption("--gates-dir")
    gates = Path(opt) if opt else Path(config.rootpath) / "gates"
    phase = next(p for p in load_phases(gates) if p.phase == "compression")
    return Gate(phase, phase.gate("decode_speedup"))
