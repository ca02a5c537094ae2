"""forge_reasoning fixtures: one cached Quiet-STaR run, and a per-session latency timing.

``quiet_star_run`` bakes, runs Quiet-STaR and scores both arms (main and theater control)
once per machine and config (cached under ``<cache>/forge_reasoning``; a file lock makes
xdist workers wait for the first).  The input is forge's champion when
``<models_dir>/forge/champion`` exists (with both phases selected forge's tests run
first: ``after: [forge]``), else a tiny model built here.
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
def forge_order(request: pytest.FixtureRequest) -> dict[str, str]:
    """Whether forge's tests ran first in this run (YAML ``after: [forge]``; the scheduler
    runs them first when both phases are selected) or were not selected."""
    from harness.phase_order import upstream_status

    return upstream_status(request, ["forge"])


@pytest.fixture(scope="session")
def quiet_star_run(
    cache_root: Path,
    no_cache: bool,
    quiet_star_config: QuietStarConfig,
    forge_order: dict[str, str],
) -> QuietStarRun:
    from harness.settings import get_settings

    del forge_order  # only ordering: the champion (if forge published one) is read below
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
