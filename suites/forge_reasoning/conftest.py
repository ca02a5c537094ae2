"""forge_reasoning fixtures: one cached Quiet-STaR run, and a per-session latency timing.

``quiet_star_run`` bakes, runs Quiet-STaR and scores both arms (main and theater control)
once per machine and config (cached under ``<cache>/forge_reasoning``; a file lock makes
xdist workers wait for the first).  The input is forge's champion when
``<models_dir>/forge/champion`` exists (with both phases selected this suite waits for
forge's tests first: ``after: [forge]``), else a tiny model built here.
``latency_timing`` times answers with thoughts once per session: it measures the
machine now, not the artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.latency import measure_latency
from trainers.quiet_star.pipeline import QuietStarRun, run_quiet_star


@pytest.fixture(scope="session")
def quiet_star_config() -> QuietStarConfig:
    return QuietStarConfig()


@pytest.fixture(scope="session")
def forge_wait(request: pytest.FixtureRequest) -> dict[str, str]:
    """Wait for forge's tests when both phases run (YAML ``after: [forge]``); what happened."""
    from harness.phase_order import wait_for_phases

    return wait_for_phases(request, ["forge"])


@pytest.fixture(scope="session")
def quiet_star_run(
    cache_root: Path, no_cache: bool, quiet_star_config: QuietStarConfig, forge_wait: dict[str, str]
) -> QuietStarRun:
    from harness.settings import get_settings

    del forge_wait  # only ordering: the champion (if forge published one) is read below
    return run_quiet_star(
        quiet_star_config,
        cache_dir=cache_root / "forge_reasoning",
        models_dir=get_settings().models_dir,
        refresh=no_cache,
    )


@pytest.fixture(scope="session")
def latency_timing(
    quiet_star_run: QuietStarRun, quiet_star_config: QuietStarConfig
) -> dict[str, Any]:
    return measure_latency(quiet_star_run, quiet_star_config)
