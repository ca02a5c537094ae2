"""Circuit-breaker phase fixtures: one cached end-to-end run shared by every gate.

``cb_run`` builds the synthetic world, audits it, trains the vulnerable baseline
and both LoRA arms, and evaluates them — once per machine for a given config
(cached by digest under ``<cache>/circuit_breaker``; a file lock makes xdist
workers wait for the first one instead of training in parallel).
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
