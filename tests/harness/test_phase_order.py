"""``after:`` in a phase YAML: the consumer phase's tests are scheduled after the upstream's.

Synthetic phases: ``up`` writes a file from a slow test; ``down`` (``after: [up]``) reads it
from a session fixture; ``other`` is independent.  In file order ``down``'s test comes
first, so without the ordering (``-n 0``) or the chain group (``-n 2``: otherwise the two
tests run at once on two workers) ``down`` would see no file.  Nothing waits: a failed
upstream test or an unselected upstream phase cannot hang the run.
"""

from __future__ import annotations

import pytest

# imported before pytester snapshots sys.modules (see tests/harness/test_plugin.py)
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer
from harness.errors import SpecError
from harness.phase_order import chain_groups, phase_ranks
from harness.spec import PhaseSpec

assert harness.gate and harness.report.plots and harness.report.terminal and harness.report.writer

GATE = """\
gates:
  - id: g
    metric: count
    direction: ge
    tiers: {primary: 1}
"""

TESTS = """\
import os
import time
from pathlib import Path

import pytest
from harness.outcomes import Outcome
from harness.phase_order import upstream_status

HERE = Path(__file__).parent
OUT = HERE / "upstream-output.txt"


def _note(name, text):
    (HERE / f"{name}.txt").write_text(text)


def _worker():
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def upstream_output(request):
    status = upstream_status(request, ["up"])["up"]
    return (OUT.read_text() if OUT.exists() else "missing"), status


@pytest.mark.phase("down")
def test_down(gate, upstream_output):
    text, status = upstream_output
    _note("down-saw", text)
    _note("down-status", status)
    _note("down-worker", _worker())
    gate.check([Outcome(item_id="x", value=1.0)], extra={"up": status})


@pytest.mark.phase("up")
@pytest.mark.xdist_group("up-subject")
def test_up(gate):
    _note("up-worker", _worker())
    time.sleep(2)
    if os.environ.get("PHASE_ORDER_FAIL_UP"):
        raise RuntimeError("the upstream phase broke")
    OUT.write_text("champion")
    gate.check([Outcome(item_id="x", value=1.0)])


@pytest.mark.phase("other")  # two gates, two quick tests: unchained, down would land beside up
def test_other(gate):
    _note(f"other-{gate.id}-worker", _worker())
    gate.check([Outcome(item_id="x", value=1.0)])
"""

ARGS = ("-p", "no:cacheprovider", "-v")


def _make(pytester: pytest.Pytester) -> None:
    pytester.mkdir("gates")
    gates = pytester.path / "gates"
    (gates / "up.yaml").write_text("phase: up\n" + GATE, encoding="utf-8")
    (gates / "down.yaml").write_text("phase: down\nafter: [up]\n" + GATE, encoding="utf-8")
    (gates / "other.yaml").write_text(
        "phase: other\n" + GATE + GATE.removeprefix("gates:\n").replace("id: g", "id: h"),
        encoding="utf-8",
    )
    pytester.makepyfile(test_order=TESTS)


def _run(pytester: pytest.Pytester, workers: str, *extra: str) -> pytest.RunResult:
    if workers == "0":
        return pytester.runpytest(*ARGS, *extra)
    # a subprocess with a timeout: a schedule that waited forever would fail here, not hang
    return pytester.runpytest_subprocess(
        *ARGS, "-n", workers, "--dist", "loadgroup", *extra, timeout=300
    )


def _note(pytester: pytest.Pytester, name: str) -> str:
    return (pytester.path / f"{name}.txt").read_text()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_consumer_runs_after_its_upstream(pytester: pytest.Pytester, workers: str) -> None:
    _make(pytester)
    result = _run(pytester, workers)
    result.assert_outcomes(passed=4)
    assert _note(pytester, "down-saw") == "champion"
    assert _note(pytester, "down-status") == "ran first: 1 test(s), 0 failed"
    if workers == "0":  # collection order: up's test first, although the file defines it last
        lines = [ln for ln in result.outlines if "::test_" in ln and "PASSED" in ln]
        assert "test_up" in lines[0] and "test_down" in lines[-1]
    else:  # the chain is one xdist work unit: one worker, no one waiting
        result.stdout.fnmatch_lines(["scheduling tests via MappedGroupScheduling"])
        assert _note(pytester, "down-worker") == _note(pytester, "up-worker") != "main"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_failed_upstream_does_not_block_the_consumer(
    pytester: pytest.Pytester, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make(pytester)
    monkeypatch.setenv("PHASE_ORDER_FAIL_UP", "1")
    result = _run(pytester, workers)
    result.assert_outcomes(passed=3, failed=1)
    assert _note(pytester, "down-saw") == "missing"
    assert _note(pytester, "down-status") == "ran first: 1 test(s), 1 failed"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_unselected_upstream_is_not_waited_for(pytester: pytest.Pytester, workers: str) -> None:
    _make(pytester)
    (pytester.path / "upstream-output.txt").write_text("champion")  # an earlier run's output
    result = _run(pytester, workers, "--phase", "down")
    result.assert_outcomes(passed=1)
    assert _note(pytester, "down-status") == "not selected"
    assert _note(pytester, "down-saw") == "champion"


def test_other_xdist_distributions_refuse_the_consumer(pytester: pytest.Pytester) -> None:
    """``--dist load`` could run ``down`` beside ``up``: ``down`` errors at setup with a
    harness error naming the fix (exit 2); ``up`` and ``other`` still run."""
    _make(pytester)
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2", "--dist", "load", timeout=300)
    result.assert_outcomes(passed=3, errors=1)
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*HarnessError: phases up → down run in order*--dist loadgroup*"])
    assert not (pytester.path / "down-saw.txt").exists()
    # one phase of the chain alone needs no order: any distribution is fine
    alone = pytester.runpytest_subprocess(
        *ARGS, "-n", "2", "--dist", "load", "--phase", "down", timeout=300
    )
    alone.assert_outcomes(passed=1)


GROUPED = """\
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.xdist_group("shared")
@pytest.mark.parametrize("k", [1, 2])
def test_grouped(k):
    (HERE / f"grouped-{k}.txt").write_text(os.environ["PYTEST_XDIST_WORKER"])


@pytest.mark.parametrize("k", [1, 2])
def test_free(k):
    pass
"""


def test_plain_xdist_groups_share_a_worker(pytester: pytest.Pytester) -> None:
    """``--dist loadgroup`` honours ``xdist_group`` (pytest 9.2 drops xdist's node-id suffix;
    the plugin's scheduler reads the workers' group maps instead), with no gate YAML."""
    pytester.makepyfile(test_grouped=GROUPED)
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2", "--dist", "loadgroup", timeout=300)
    result.assert_outcomes(passed=4)
    assert _note(pytester, "grouped-1") == _note(pytester, "grouped-2")


def _spec(name: str, after: list[str]) -> PhaseSpec:
    return PhaseSpec.model_validate(
        {"phase": name, "after": after, "gates": [{"id": "g", "metric": "count",
         "direction": "ge", "tiers": {"primary": 1}}]}
    )  # fmt: skip


def test_ranks_and_cycles() -> None:
    specs = {"a": _spec("a", []), "b": _spec("b", ["a", "unknown"]), "c": _spec("c", ["b"])}
    assert phase_ranks(specs) == {"a": 0, "b": 1, "c": 2}
    with pytest.raises(SpecError, match="cycle: a → b → a"):
        phase_ranks({"a": _spec("a", ["b"]), "b": _spec("b", ["a"])})


CHAIN_TESTS = """\
import pytest

pytestmark = pytest.mark.phase("x")  # overridden per test below


@pytest.mark.phase("up")
@pytest.mark.xdist_group("up-subject")
def test_up():
    pass


@pytest.mark.phase("down")
@pytest.mark.xdist_group("down-subject")
def test_down():
    pass


@pytest.mark.phase("side")
@pytest.mark.xdist_group("up-subject")
def test_shares_a_group_with_up():
    pass


@pytest.mark.phase("other")
@pytest.mark.xdist_group("other-subject")
def test_other():
    pass
"""


def _groups(item: pytest.Item) -> set[str]:
    return {str(m.args[0]) for m in item.iter_markers("xdist_group")}


def test_a_chain_gets_one_group_set_and_keeps_shared_groups_whole(
    pytester: pytest.Pytester,
) -> None:
    items = pytester.getitems(CHAIN_TESTS)
    specs = {
        "up": _spec("up", []),
        "down": _spec("down", ["up"]),
        "side": _spec("side", []),
        "other": _spec("other", []),
    }
    chains = chain_groups(items, specs)
    by_name = {i.name: i for i in items}
    assert [sorted(i.name for i in c) for c in chains] == [
        ["test_down", "test_shares_a_group_with_up", "test_up"]
    ]
    chain = {"up-subject", "down-subject"}
    assert _groups(by_name["test_up"]) == _groups(by_name["test_down"]) == chain
    assert _groups(by_name["test_shares_a_group_with_up"]) == chain
    assert _groups(by_name["test_other"]) == {"other-subject"}
    assert chain_groups([by_name["test_down"], by_name["test_other"]], specs) == []
