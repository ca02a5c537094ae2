"""Where the AgentDojo client venv is, checked: shared by the evaluator lane and the trainers.

:mod:`harness.evaluators.agentdojo_lane` runs the lane through this venv and
:mod:`trainers.circuit_breaker.sources.agentdojo` exports training samples through it.
It lives outside ``harness.evaluators`` because trainers never import evaluators.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import HarnessError
from harness.settings import env_option

__all__ = ["AGENTDOJO_VERSION", "AgentDojoUnavailable", "find_agentdojo_python"]

AGENTDOJO_VERSION = "0.1.35"
_REPO_ROOT = Path(__file__).resolve().parents[1]


class AgentDojoUnavailable(HarnessError):
    """The agentdojo client venv is missing or broken (fix: ``scripts/setup_agentdojo.sh``)."""


def find_agentdojo_python(venv: Path | None = None) -> Path:
    """The agentdojo venv's python: ``venv``, ``$HARNESS_AGENTDOJO_VENV`` or ``.venv-agentdojo``.

    Raises :class:`AgentDojoUnavailable` naming the path tried and the fix.
    """
    root = venv or Path(env_option("HARNESS_AGENTDOJO_VENV") or _REPO_ROOT / ".venv-agentdojo")
    python = root / "bin" / "python"
    if not python.is_file():
        raise AgentDojoUnavailable(
            f"agentdojo venv not found at {root} (no {python}); create it with "
            f"`scripts/setup_agentdojo.sh` (or set HARNESS_AGENTDOJO_VENV to an existing one)"
        )
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('agentdojo'))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = probe.stdout.strip()
    if probe.returncode != 0 or found != AGENTDOJO_VERSION:
        raise AgentDojoUnavailable(
            f"{python}: agentdojo {AGENTDOJO_VERSION} is required, found "
            f"{found or 'none'} ({probe.stderr.strip()[-200:]}); rerun `scripts/setup_agentdojo.sh`"
        )
    return python
