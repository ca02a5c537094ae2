"""Forge phase fixture: one cached Cognate + EvoMerge run shared by every gate.

``forge_run`` trains the three Cognate models, evolves them and judges every subject on
the held-out split — once per machine for a given key (``harness.cachekey.cache_key``
over the producing code, libraries, config, data and seed; cached under
``<cache>/forge``; a file lock makes xdist workers wait for the first one).  It also
publishes the champion to ``<models_dir>/forge/champion`` (docs/forge.md: the contract
the compression and Quiet-STaR phases read).  ``HARNESS_FORGE_DATA`` points the run at a
user JSONL (``question``/``answer``) instead of the generated task;
``HARNESS_FORGE_CONFIG`` names a JSON file of :class:`ForgeConfig` fields (e.g. a
smaller smoke setting or a longer full one; docs/forge.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.settings import env_option
from trainers.forge.config import ForgeConfig
from trainers.forge.pipeline import ForgeRun, run_forge


def _cache_root(config: pytest.Config) -> Path:
    from harness.settings import get_settings  # HARNESS_CACHE_DIR, docs/settings.md

    value = config.getoption("--cache-dir", default=None)
    return Path(value) if value else get_settings().cache_dir


@pytest.fixture(scope="session")
def forge_config() -> ForgeConfig:
    fields: dict[str, object] = {}
    path = env_option("HARNESS_FORGE_CONFIG")
    if path:
        fields = json.loads(Path(path).read_text(encoding="utf-8"))
    data = env_option("HARNESS_FORGE_DATA")
    if data:
        fields["data_path"] = data
    return ForgeConfig.model_validate(fields)


@pytest.fixture(scope="session")
def forge_run(
    request: pytest.FixtureRequest, forge_config: ForgeConfig, no_cache: bool
) -> ForgeRun:
    return run_forge(
        forge_config, cache_dir=_cache_root(request.config) / "forge", refresh=no_cache
    )
