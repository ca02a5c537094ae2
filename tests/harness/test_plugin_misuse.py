"""A user's own suite misusing the plugin contract (docs/use-in-your-repo.md).

Each misuse must end in an error naming the gate, the value and the fix, or in a
MISSING gate — never in a PASS.  One synthetic phase holds one misuse per gate, run
by ``pytester`` at ``-n 0``, ``-n 2`` and without xdist (``-p no:xdist``).
"""

from __future__ import annotations

import json

import pytest

# imported before pytester snapshots sys.modules (see test_plugin.py)
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer

assert harness.gate and harness.report.plots and harness.report.terminal and harness.report.writer

PHASE_YAML = """\
phase: misuse
gates:
  - {id: ok, metric: proportion, direction: ge, tiers: {primary: 0.5}}
  - {id: dup_ids, metric: proportion, direction: ge, tiers: {primary: 0.5}}
  - {id: generator, metric: proportion, direction: ge, tiers: {primary: 0.5}}
  - {id: one_outcome, metric: proportion, direction: ge, tiers: {primary: 0.5}}
  - {id: nan, metric: quantile, params: {q: 0.95}, direction: le, tiers: {primary: 1.0}}
  - {id: empty, metric: mean, direction: ge, tiers: {primary: 0.5}}
  - {id: expect_on_model, metric: proportion, direction: ge, tiers: {primary: 0.5}}
  - {id: no_subject, metric: proportion, direction: ge, tiers: {primary: 0.5}}
"""

TESTS = """\
import pytest
from harness.outcomes import Outcome

GOOD = [Outcome(item_id=f"i{i:03d}", value=1.0) for i in range(100)]


def _check(gate, outcomes, **kw):
    gate.check(outcomes, **kw)


@pytest.mark.phase("misuse")
@pytest.mark.gate("ok")
def test_ok(gate):
    _check(gate, GOOD)


@pytest.mark.phase("misuse")
@pytest.mark.gate("dup_ids")
def test_dup_ids(gate):  # one item counted 100 times would shrink the interval tenfold
    _check(gate, [Outcome(item_id="same", value=1.0) for _ in range(100)])


@pytest.mark.phase("misuse")
@pytest.mark.gate("generator")
def test_generator(gate):
    _check(gate, (o for o in GOOD))


@pytest.mark.phase("misuse")
@pytest.mark.gate("one_outcome")
def test_one_outcome(gate):
    _check(gate, GOOD[0])


@pytest.mark.phase("misuse")
@pytest.mark.gate("nan")
def test_nan(gate):
    _check(gate, [Outcome(item_id=f"r{i}", value=float("nan")) for i in range(50)])


@pytest.mark.phase("misuse")
@pytest.mark.gate("empty")
def test_empty(gate):
    _check(gate, [])


@pytest.mark.phase("misuse")
@pytest.mark.gate("expect_on_model")
def test_expect_on_model(gate):  # expect= makes it a control: no model verdict
    _check(gate, GOOD, expect="PASS")


@pytest.mark.phase("misuse")
@pytest.mark.gate("no_subject")
def test_no_subject(gate):
    _check(gate, GOOD, subject=None)
"""

#: gate → what its MISSING reason must name
REASONS = {
    "dup_ids": "'same' ×100",
    "generator": "must be a list of Outcome objects, got generator",
    "one_outcome": "got Outcome; pass a list",
    "nan": "not a finite number for 50 of 50 items",
    "empty": "no outcomes to estimate from",
    "expect_on_model": "only control subjects decided it",
    "no_subject": "subject=None must be a non-empty string",
}


@pytest.mark.parametrize("mode", ["0", "2", "no-xdist"])
def test_misuse_is_an_error_or_missing_never_a_pass(pytester: pytest.Pytester, mode: str) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "misuse.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_misuse=TESTS)
    out = pytester.path / "ev"
    if mode == "0":
        result = pytester.runpytest("-n", "0", "--evidence-dir", str(out))
    elif mode == "2":
        result = pytester.runpytest_subprocess("-n", "2", "--evidence-dir", str(out))
    else:
        result = pytester.runpytest_subprocess("-p", "no:xdist", "--evidence-dir", str(out))
    assert result.ret == 2, result.stdout.str()  # StatsError is a HarnessError
    acc = json.loads((out / "gate-accounting.json").read_text(encoding="utf-8"))
    (phase,) = acc["phases"]
    status = {s["gate"]: s for s in phase["statuses"]}
    assert status["ok"]["status"] == "PASS"
    for gate, needle in REASONS.items():
        assert status[gate]["status"] == "MISSING", status[gate]
        assert needle in status[gate]["reason"], (gate, status[gate]["reason"])
    result.stdout.fnmatch_lines(["*phase misuse: NOT passed*"])
