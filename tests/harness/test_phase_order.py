"""``after:`` in a phase YAML: the consumer phase's tests run (or wait) after the upstream's.

Two synthetic phases: ``up`` writes a file from a slow test; ``down`` (``after: [up]``)
reads it from a session fixture that first calls :func:`wait_for_phases`.  In file
order ``down``'s test would come first, so without the ordering (``-n 0``) or the wait
(``-n 2``: the two tests run at once on two workers) the file would be missing.
"""

from __future__ import annotations

import pytest

# imported before pytester snapshots sys.modules (see tests/harness/test_plugin.py)
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer
from harness.errors import SpecError
from harness.phase_order import phase_ranks
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
import time
from pathlib import Path

import pytest
from harness.outcomes import Outcome
from harness.phase_order import wait_for_phases

OUT = Path(__file__).parent / "upstream-output.txt"


@pytest.fixture(scope="session")
def upstream_output(request):
    waited = wait_for_phases(request, ["up"], poll=0.2)
    return (OUT.read_text() if OUT.exists() else "missing"), waited


@pytest.mark.phase("down")
def test_down(gate, upstream_output):
    text, waited = upstream_output
    assert text == "champion", (text, waited)
    gate.check([Outcome(item_id="x", value=1.0)], extra={"waited": waited})


@pytest.mark.phase("up")
def test_up(gate):
    time.sleep(3)
    OUT.write_text("champion")
    gate.check([Outcome(item_id="x", value=1.0)])
"""


def _make(pytester: pytest.Pytester) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "up.yaml").write_text("phase: up\n" + GATE, encoding="utf-8")
    (pytester.path / "gates" / "down.yaml").write_text(
        "phase: down\nafter: [up]\n" + GATE, encoding="utf-8"
    )
    pytester.makepyfile(test_order=TESTS)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_consumer_phase_sees_the_upstream_output(pytester: pytest.Pytester, workers: str) -> None:
    _make(pytester)
    args = ["-p", "no:cacheprovider", "-v"]
    if workers == "0":
        result = pytester.runpytest(*args)
    else:
        result = pytester.runpytest_subprocess(*args, "-n", workers, "--dist", "loadgroup")
    result.assert_outcomes(passed=2)
    if workers == "0":  # collection order: up's test first, although the file defines it last
        lines = [ln for ln in result.outlines if "::test_" in ln and "PASSED" in ln]
        assert "test_up" in lines[0] and "test_down" in lines[1]


def test_down_alone_does_not_wait(pytester: pytest.Pytester) -> None:
    _make(pytester)
    (pytester.path / "upstream-output.txt").write_text("champion")  # an earlier run's output
    result = pytester.runpytest("-p", "no:cacheprovider", "--phase", "down")
    result.assert_outcomes(passed=1)


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
