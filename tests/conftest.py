"""Project-wide test configuration.

``pytester`` lets the plugin tests run small synthetic phases in a temporary
directory, in-process and in a subprocess (the latter for xdist).

:func:`harness.settings.get_settings` reads the environment once per process;
tests that ``monkeypatch.setenv`` a root (``HARNESS_DATA_DIR``, ...) get fresh
settings because every test starts and ends with them forgotten.  Training runs
log to W&B offline; tests keep those runs under pytest's temporary directory
(``WANDB_DIR``) instead of the user's cache.
"""

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.cachekey import reset_provenance
from harness.settings import reset_settings

pytest_plugins = ["pytester"]

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.getbasetemp() / "wandb"))
    reset_settings()
    reset_provenance()  # evidence of an in-process pytester run names only its own caches
    yield
    reset_settings()


@pytest.fixture
def project_copy(tmp_path: Path) -> Callable[[str], str]:
    """A copy of ``harness`` and ``trainers`` under ``tmp_path``, and a runner for Python
    code against it in a fresh interpreter (isolated environment): cache-key tests edit
    the copied producer modules between runs and compare the keys the code prints.
    Returns the code's stdout; a non-zero exit fails the test with its stderr."""
    for package in ("harness", "trainers"):
        shutil.copytree(
            _ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run
