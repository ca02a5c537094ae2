"""Project-wide test configuration.

``pytester`` lets the plugin tests run small synthetic phases in a temporary
directory, in-process and in a subprocess (the latter for xdist).

:func:`harness.settings.get_settings` reads the environment once per process;
tests that ``monkeypatch.setenv`` a root (``HARNESS_DATA_DIR``, ...) get fresh
settings because every test starts and ends with them forgotten.
"""

from collections.abc import Iterator

import pytest

from harness.settings import reset_settings

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()
