"""Project-wide test configuration.

``pytester`` lets the plugin tests run small synthetic phases in a temporary
directory, in-process and in a subprocess (the latter for xdist).

:func:`harness.settings.get_settings` reads the environment once per process;
tests that ``monkeypatch.setenv`` a root (``HARNESS_DATA_DIR``, ...) get fresh
settings because every test starts and ends with them forgotten.  Training runs
log to W&B offline; tests keep those runs under pytest's temporary directory
(``WANDB_DIR``) instead of the user's cache.
"""

from collections.abc import Iterator

import pytest

from harness.cachekey import reset_provenance
from harness.settings import reset_settings

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _fresh_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.getbasetemp() / "wandb"))
    reset_settings()
    reset_provenance()  # evidence of an in-process pytester run names only its own caches
    yield
    reset_settings()
