"""Phase ordering: a phase that consumes another's output runs after it (``after:`` in its YAML).

A phase YAML may say ``after: [forge]`` (compression compresses forge's
champion).  Within one pytest session — one ``harness run``, one evidence file —
the order is enforced where the tests are *scheduled*, so no process ever waits
for another:

1. :func:`order_items` sorts the collected tests so every phase's tests come after
   the tests of the phases it names (a stable sort by topological rank; a cycle is
   a spec error).  Without xdist that alone is the guarantee.
2. Under xdist with ``--dist loadgroup`` (what ``harness run`` passes),
   :func:`chain_groups` gives every test of a chain of selected phases linked by
   ``after:`` the same set of ``xdist_group`` names (the union of the groups its
   tests already carry, so a subject's tests stay together too).  The loadgroup
   scheduler (:class:`GroupScheduler`: xdist's, fed the groups through a map the
   workers write, since pytest ≥ 9.2 drops xdist's own ``@group`` node-id suffix) then
   hands the whole chain to *one* worker as one work unit, in collection order —
   upstream first — while the other workers run other phases.
   Nothing sleeps and nothing polls, so nothing can deadlock: a failed or crashed
   upstream test is simply over when the consumer's turn comes.
3. Any other xdist distribution (``load``, ``loadfile``, ...) could run a consumer
   beside its upstream: in such a run the chain's consumer tests error at setup with a
   harness error naming the fix (exit code 2); the upstream's tests still run.

An upstream phase that is not selected is not part of any chain: the consumer
uses whatever that phase left from an earlier run.  :func:`upstream_status` tells
a consumer which case it is in (and checks, from this process's own finished
tests, that the upstream tests really ran first), for its evidence.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.atomic import atomic_write_text
from harness.errors import HarnessError, SpecError
from harness.spec import PhaseSpec

__all__ = [
    "GroupScheduler",
    "PhaseOrderPlugin",
    "apply_order",
    "chain_groups",
    "order_items",
    "phase_ranks",
    "register",
    "upstream_status",
]

_PLUGIN = "gate-harness-phase-order"
#: workerinput key: the directory where each xdist worker publishes its test → group map
_GROUPS_DIR = "gate_harness_groups_dir"


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


def _groups_of(item: pytest.Item) -> set[str]:
    """The item's ``xdist_group`` names, read the way xdist reads them."""
    names: set[str] = set()
    for mark in item.iter_markers("xdist_group"):
        names.add(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")))
    return names


def order_items(items: list[pytest.Item], phases: Mapping[str, PhaseSpec]) -> list[pytest.Item]:
    """``items`` stably sorted so each phase's tests follow those of the phases in its ``after``."""
    if not any(p.after for p in phases.values()):
        return items
    ranks = phase_ranks(phases)
    return sorted(items, key=lambda i: ranks.get(_phase_of(i) or "", 0))


class _Components:
    """Union–find over ``phase:<name>`` and ``group:<name>`` keys."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, keys: Iterable[str]) -> None:
        roots = [self.find(k) for k in keys]
        for r in roots[1:]:
            self.parent[r] = roots[0]


def chain_groups(
    items: Sequence[pytest.Item], phases: Mapping[str, PhaseSpec]
) -> list[list[pytest.Item]]:
    """Put each chain's tests in one xdist group; the chains (their tests, in order).

    A chain is a connected set of selected phases linked by ``after:`` — widened by
    ``xdist_group`` names its tests share with other tests, so a group is never split.
    Every test of a chain gets the chain's full set of group names (xdist joins an
    item's names into its scope, so equal sets mean one work unit).  Phases not linked
    to another selected phase are left alone.
    """
    selected = {p for i in items if (p := _phase_of(i)) is not None}
    comps = _Components()
    linked: set[str] = set()
    for name in sorted(selected & set(phases)):
        for up in phases[name].after:
            if up in selected:
                comps.union([f"phase:{name}", f"phase:{up}"])
                linked |= {name, up}
    if not linked:
        return []
    keys_of: dict[int, list[str]] = {}
    for item in items:
        phase = _phase_of(item)
        keys = ([f"phase:{phase}"] if phase is not None else []) + sorted(
            f"group:{g}" for g in _groups_of(item)
        )
        if keys:
            keys_of[id(item)] = keys
            comps.union(keys)
    roots = {comps.find(f"phase:{p}") for p in linked}
    chains: dict[str, list[pytest.Item]] = {}
    for item in items:
        first = keys_of.get(id(item), [None])[0]
        if first is not None and (root := comps.find(first)) in roots:
            chains.setdefault(root, []).append(item)
    for members in chains.values():
        names = set().union(*(_groups_of(i) for i in members))
        if not names:  # no test carries a group yet: name one after the chain's phases
            names = {"after-" + "+".join(sorted(_phases_in(members)))}
        for item in members:
            for name in sorted(names - _groups_of(item)):
                item.add_marker(pytest.mark.xdist_group(name))
    return list(chains.values())


def _phases_in(items: Iterable[pytest.Item]) -> set[str]:
    return {p for i in items if (p := _phase_of(i)) is not None}


class PhaseOrderPlugin:
    """Per process: the finished (and failed) tests :func:`upstream_status` reads, and the
    consumer tests refused because this run's distribution cannot keep the order."""

    def __init__(self) -> None:
        self.finished: set[str] = set()
        self.failed: set[str] = set()
        self.refused: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)  # the map must exist before xdist reports collection
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """xdist worker: publish each collected test's group scope for :class:`GroupScheduler`."""
        workerinput: dict[str, Any] | None = getattr(session.config, "workerinput", None)
        if workerinput is None or not workerinput.get(_GROUPS_DIR):
            return
        if not session.config.getvalue("loadgroup"):
            return  # another distribution: groups do not schedule anything
        scopes = {i.nodeid: "_".join(sorted(_groups_of(i))) for i in session.items}
        path = Path(workerinput[_GROUPS_DIR]) / f"{workerinput['workerid']}.json"
        atomic_write_text(path, json.dumps(scopes))

    @pytest.hookimpl(tryfirst=True)  # before any fixture of the refused test is set up
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        why = self.refused.get(item.nodeid)
        if why is not None:
            raise HarnessError(why)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)

    @pytest.hookimpl
    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        self.finished.add(nodeid)


class GroupScheduler:
    """xdist controller: schedule ``--dist loadgroup`` by the groups the workers publish.

    xdist's own loadgroup scheduler reads a test's group from an ``@group`` suffix its
    worker hook writes into the node id; with the structured node ids of pytest ≥ 9.2
    that write no longer takes effect (pytest-xdist issue 1386) and every ``xdist_group``
    mark is silently ignored.  So each worker writes ``{node id: group scope}`` to a
    directory handed to it here (:meth:`PhaseOrderPlugin.pytest_collection_finish`), and
    the scheduler returned below looks the scope up there; a test without a group is
    its own scope, as in xdist.  With an xdist whose suffix does work the node ids carry
    it and the map agrees.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="gate-harness-groups-"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_GROUPS_DIR] = str(self.directory)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "loadgroup":
            return None
        return _group_scheduling(config, log, self.directory)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _group_scheduling(config: pytest.Config, log: Any, directory: Path) -> Any:
    """xdist's ``LoadGroupScheduling`` with the scope of a test read from the workers' maps."""
    from xdist.scheduler import LoadGroupScheduling

    scopes: dict[str, str] = {}

    class MappedGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist: untyped
        def _split_scope(self, nodeid: str) -> str:
            if nodeid not in scopes:  # a (re)started worker's map: read the maps again
                for path in sorted(directory.glob("*.json")):
                    scopes.update(json.loads(path.read_text(encoding="utf-8")))
            scope = scopes.get(nodeid)
            return scope if scope else str(super()._split_scope(nodeid))

    return MappedGroupScheduling(config, log)


def register(config: pytest.Config) -> None:
    """The plugin's configure: :class:`PhaseOrderPlugin` in every process (it also publishes
    a worker's groups, with or without gate specs), :class:`GroupScheduler` on an xdist
    controller."""
    if not config.pluginmanager.has_plugin(_PLUGIN):
        config.pluginmanager.register(PhaseOrderPlugin(), _PLUGIN)
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    if not getattr(config.option, "numprocesses", None):
        return
    config.pluginmanager.register(GroupScheduler(), "gate-harness-group-scheduler")


def apply_order(
    config: pytest.Config, items: list[pytest.Item], phases: Mapping[str, PhaseSpec]
) -> list[pytest.Item]:
    """Order ``items`` (:func:`order_items`) and put each chain on one worker (the plugin's
    collection hook; it runs before xdist's, which turns the group names into scopes).

    Under an xdist distribution other than ``loadgroup`` a chain's consumer tests are
    refused: each errors at setup with a :class:`HarnessError` naming the fix (a worker
    cannot stop the session cleanly from its collection hook).
    """
    plugin = config.pluginmanager.get_plugin(_PLUGIN)
    if not isinstance(plugin, PhaseOrderPlugin):
        plugin = PhaseOrderPlugin()
        config.pluginmanager.register(plugin, _PLUGIN)
    if not any(p.after for p in phases.values()):
        return items
    ordered = order_items(items, phases)
    chains = chain_groups(ordered, phases)
    if chains and hasattr(config, "workerinput") and not config.getvalue("loadgroup"):
        ranks = phase_ranks(phases)
        for chain in chains:
            names = sorted(_phases_in(chain), key=lambda p: (ranks.get(p, 0), p))
            why = (
                f"phases {' → '.join(names)} run in order ('after:' in their YAML), which xdist "
                "keeps only with --dist loadgroup (harness run passes it); fix: add --dist "
                "loadgroup, run with -n 0, or select one phase of the chain (--phase)"
            )
            consumers = {n for n in names if n in phases and set(phases[n].after) & set(names)}
            plugin.refused.update({i.nodeid: why for i in chain if _phase_of(i) in consumers})
    return ordered


def upstream_status(request: pytest.FixtureRequest, phases: Sequence[str]) -> dict[str, str]:
    """Per upstream phase, what this consumer can rely on (for its evidence).

    ``"not selected"`` (no test of it in this run: the consumer uses an earlier
    run's output), ``"ran first: N test(s), K failed"``, or — if the schedule did not
    run them all before this consumer in this process, which :func:`apply_order`
    prevents — ``"NOT run first: M of N test(s) had not finished"``.
    """
    done = request.config.pluginmanager.get_plugin(_PLUGIN)
    finished: set[str] = done.finished if isinstance(done, PhaseOrderPlugin) else set()
    failed: set[str] = done.failed if isinstance(done, PhaseOrderPlugin) else set()
    out: dict[str, str] = {}
    for phase in phases:
        ids = [i.nodeid for i in request.session.items if _phase_of(i) == phase]
        if not ids:
            out[phase] = "not selected"
            continue
        missing = [n for n in ids if n not in finished]
        if missing:
            out[phase] = (
                f"NOT run first: {len(missing)} of {len(ids)} test(s) had not finished "
                "in this process"
            )
        else:
            bad = sum(n in failed for n in ids)
            out[phase] = f"ran first: {len(ids)} test(s), {bad} failed"
    return out
