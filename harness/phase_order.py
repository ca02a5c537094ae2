"""Phase ordering: a phase that consumes another's output runs after it (``after:`` in its YAML).

A phase YAML may say ``after: [forge]`` (compression compresses forge's
champion).  Within one pytest session — one ``harness run``, one evidence file —
this is honoured in two steps:

1. :func:`order_items` sorts the collected tests so every phase's tests come after
   the tests of the phases it names (a stable sort by topological rank; a cycle is
   a spec error).  Without xdist that alone is the guarantee.
2. With xdist, tests of both phases can run at once on different workers, so a
   consumer calls :func:`wait_for_phases` before it reads the upstream output: it
   waits until every *selected* test of the upstream phase has finished on any
   worker.  Each finished test leaves a marker file in a directory shared by the
   workers of this run (named after xdist's ``testrunuid``), written by
   :class:`PhaseDoneMarkers`.  Because every worker receives its tests in
   collection order, an upstream test is never queued behind the consumer on the
   same worker, so the wait cannot deadlock; a crashed upstream test (no marker)
   ends the wait at the timeout, and the caller says so.

An upstream phase that is not selected in this run is not waited for: the
consumer uses whatever that phase left from an earlier run.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SpecError
from harness.spec import PhaseSpec

__all__ = [
    "PhaseDoneMarkers",
    "apply_order",
    "order_items",
    "phase_ranks",
    "wait_for_phases",
]

_PLUGIN = "gate-harness-phase-done"

#: Default longest wait for upstream phases (seconds); a crashed upstream test ends it.
DEFAULT_WAIT_S = 4 * 3600.0


def phase_ranks(phases: Mapping[str, PhaseSpec]) -> dict[str, int]:
    """Rank 0 for phases with no known ``after``; else 1 + the largest rank they follow."""
    ranks: dict[str, int] = {}

    def rank(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            cycle = " → ".join((*path, name))
            raise SpecError(f"phase order cycle: {cycle} (fix the 'after:' lists)")
        if name not in ranks:
            ups = [u for u in phases[name].after if u in phases] if name in phases else []
            ranks[name] = 1 + max((rank(u, (*path, name)) for u in ups), default=-1)
        return ranks[name]

    for name in phases:
        rank(name, ())
    return ranks


def _phase_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("phase")
    return str(mark.args[0]) if mark is not None and mark.args else None


def order_items(items: list[pytest.Item], phases: Mapping[str, PhaseSpec]) -> list[pytest.Item]:
    """``items`` stably sorted so each phase's tests follow those of the phases in its ``after``."""
    if not any(p.after for p in phases.values()):
        return items
    ranks = phase_ranks(phases)
    return sorted(items, key=lambda i: ranks.get(_phase_of(i) or "", 0))


def _marker_root(config: pytest.Config) -> Path:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    uid = workerinput.get("testrunuid") if workerinput else None
    if uid is None:
        uid = getattr(config, "_gate_harness_run_uid", None)
        if uid is None:
            uid = uuid.uuid4().hex
            config._gate_harness_run_uid = uid  # type: ignore[attr-defined]
    return Path(tempfile.gettempdir()) / f"gate-harness-phase-done-{uid}"


def _marker(root: Path, phase: str, nodeid: str) -> Path:
    return root / phase / hashlib.sha256(nodeid.encode()).hexdigest()[:32]


class PhaseDoneMarkers:
    """Leaves one marker per finished test of a phase that another phase runs ``after``."""

    def __init__(self, config: pytest.Config, phase_of: Mapping[str, str]) -> None:
        self.config = config
        self.phase_of = dict(phase_of)

    @pytest.hookimpl
    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        controller = getattr(self.config, "workerinput", None) is None and (
            getattr(self.config.option, "dist", "no") != "no"
        )
        phase = self.phase_of.get(nodeid)
        if phase is not None and not controller:  # the xdist controller only relays reports
            path = _marker(_marker_root(self.config), phase, nodeid)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def apply_order(
    config: pytest.Config, items: list[pytest.Item], phases: Mapping[str, PhaseSpec]
) -> list[pytest.Item]:
    """Order ``items`` (:func:`order_items`) and mark upstream tests' ends (the plugin's hook)."""
    upstream = {u for p in phases.values() for u in p.after}
    if not upstream:
        return items
    ordered = order_items(items, phases)
    phase_of = {i.nodeid: p for i in ordered if (p := _phase_of(i)) in upstream}
    if phase_of and not config.pluginmanager.has_plugin(_PLUGIN):
        config.pluginmanager.register(PhaseDoneMarkers(config, phase_of), _PLUGIN)
    return ordered


def wait_for_phases(
    request: pytest.FixtureRequest,
    phases: Sequence[str],
    *,
    timeout: float = DEFAULT_WAIT_S,
    poll: float = 2.0,
) -> dict[str, str]:
    """Wait until every selected test of ``phases`` finished; per phase, what happened.

    ``"not selected"`` (no test of it in this run: nothing to wait for), ``"done"``
    (with the seconds waited), or ``"timeout"`` (some test never finished — e.g. it
    crashed its worker); the caller records this in its evidence.
    """
    session = request.session
    root = _marker_root(request.config)
    out: dict[str, str] = {}
    start = time.monotonic()
    for phase in phases:
        ids = [i.nodeid for i in session.items if _phase_of(i) == phase]
        if not ids:
            out[phase] = "not selected"
            continue
        while True:
            missing = [n for n in ids if not _marker(root, phase, n).exists()]
            if not missing:
                out[phase] = f"done (waited {time.monotonic() - start:.0f} s)"
                break
            if time.monotonic() - start > timeout:
                out[phase] = f"timeout after {timeout:.0f} s ({len(missing)} test(s) unfinished)"
                break
            time.sleep(poll)
    return out
