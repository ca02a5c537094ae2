"""Circuit-breaker phase fixtures: one cached end-to-end run shared by every gate.

``cb_run`` builds the synthetic world, audits it, trains the vulnerable baseline
and both LoRA arms, and evaluates them — once per machine for a given config
(cached by digest under ``<cache>/circuit_breaker``; a file lock makes xdist
workers wait for the first one instead of training in parallel).

``_cb_eval_to_wandb`` (autouse) collects each test's evidence record and, when
the process's session ends, writes the evaluation metrics and the gate
decisions to one W&B eval run linked to the training runs
(:mod:`harness.evaluators.circuit_breaker_tracking`; a no-op without W&B).
The suite's ``xdist_group`` mark keeps the phase on one worker under ``harness
run`` (``--dist loadgroup``), so that run holds every gate of the phase; other
distributions (plain ``pytest -n 2``) may split it, one eval run per worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.evidence import EvidenceRecord
from trainers.circuit_breaker.pipeline import PhaseRun, PhaseRunConfig, run_phase


def _cache_root(config: pytest.Config) -> Path:
    from harness.settings import get_settings

    value = config.getoption("--cache-dir", default=None)
    return Path(value) if value else get_settings().cache_dir


@pytest.fixture(scope="session")
def cb_config() -> PhaseRunConfig:
    return PhaseRunConfig()


@pytest.fixture(scope="session")
def cb_run(
    request: pytest.FixtureRequest, cb_config: PhaseRunConfig, no_cache: bool, shared_dir: Path
) -> PhaseRun:
    """The phase run; with ``--no-cache`` the first worker recomputes it, the others reuse that."""
    from filelock import FileLock

    done = shared_dir / "circuit-breaker-refreshed"
    with FileLock(str(done) + ".lock"):
        refresh = no_cache and not done.exists()
        run = run_phase(
            cb_config,
            cache_dir=_cache_root(request.config) / "circuit_breaker",
            progress=lambda msg: None,
            refresh=refresh,
        )
        if refresh:
            done.touch()
    return run


@dataclass
class _EvalLog:
    """What this process decided: the phase run and every gate record, for the eval run."""

    run: PhaseRun | None = None
    records: list[EvidenceRecord] = field(default_factory=list)


@pytest.fixture(scope="session")
def _cb_eval_log() -> Iterator[_EvalLog]:
    from harness.evaluators.circuit_breaker_tracking import log_phase_evaluation

    log = _EvalLog()
    yield log
    if log.run is not None and log.records:
        log_phase_evaluation(log.run, log.records)


@pytest.fixture(autouse=True)
def _cb_eval_to_wandb(request: pytest.FixtureRequest, _cb_eval_log: _EvalLog) -> Iterator[None]:
    yield
    gate = request.node.funcargs.get("gate")
    record = getattr(gate, "last_record", None)
    if isinstance(record, EvidenceRecord):
        _cb_eval_log.records.append(record)
        run = request.node.funcargs.get("cb_run")
        if isinstance(run, PhaseRun):
            _cb_eval_log.run = run
