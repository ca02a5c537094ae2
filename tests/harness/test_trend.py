"""``harness trend`` on three stored nightly runs made by the real plugin.

Night 1 and night 2 answer the same 200 prompts with about the same quality;
night 3 loses many of them (85 % → 45 % answered) (the proportion gate goes PASS → FAIL, McNemar's
exact test flags the paired drop) and its similarity scores rise on every
prompt (the ≤ gate stays PASS, but the Wilcoxon signed-rank test flags the
paired rise).  The run directories are named so that alphabetical order is not
the order the nights ran in: trends follow the runs' own clocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# imported before pytester snapshots sys.modules (see tests/harness/test_plugin.py)
import harness.gate
import harness.report.plots
import harness.report.terminal
import harness.report.writer
from harness.cli import main
from harness.trend import build_trends, find_nights, paired_test

assert harness.gate and harness.report.plots and harness.report.terminal and harness.report.writer

PHASE_YAML = """\
phase: nightly
alpha: 0.05
multiplicity: holm
gates:
  - id: answered
    metric: proportion
    direction: ge
    tiers: {primary: 0.6}
  - id: similarity
    metric: mean
    bounds: [0, 1]
    direction: le
    tiers: {primary: 0.6}
"""

TEST_FILE = """\
import hashlib, os
import pytest
from harness.outcomes import Outcome

NIGHT = int(os.environ["NIGHT"])


def u(key):
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


@pytest.mark.phase("nightly")
@pytest.mark.gate("answered")
def test_answered(gate):
    p = 0.45 if NIGHT == 3 else 0.85
    gate.check([Outcome(f"q{i}", float(u(f"q{i}") < p)) for i in range(200)])


@pytest.mark.phase("nightly")
@pytest.mark.gate("similarity")
def test_similarity(gate):
    shift = 0.05 if NIGHT == 3 else 0.0
    gate.check([Outcome(f"q{i}", 0.2 + 0.2 * u(f"s{i}") + shift) for i in range(200)])
"""


def _nights(pytester: pytest.Pytester) -> Path:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "nightly.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_nightly=TEST_FILE)
    root = pytester.path / "history"
    for night, name in ((1, "run-b"), (2, "run-a"), (3, "run-c")):
        pytester._monkeypatch.setenv("NIGHT", str(night))
        pytester.runpytest("-p", "no:cacheprovider", "--evidence-dir", str(root / name))
    return root


def test_trend_over_three_nights_flags_the_regressions(pytester: pytest.Pytester) -> None:
    root = _nights(pytester)
    nights = find_nights([root])
    assert [n.label for n in nights] == ["run-b", "run-a", "run-c"]  # by the runs' clocks
    series = {s.key[1]: s for s in build_trends(nights)}
    answered, similarity = series["answered"], series["similarity"]
    assert [p.verdict for p in answered.points] == ["PASS", "PASS", "FAIL"]
    assert [p.verdict for p in similarity.points] == ["PASS", "PASS", "PASS"]
    assert all(p.lo <= p.value <= p.hi for p in answered.points + similarity.points)
    assert not any(p.flags for s in series.values() for p in s.points[:2])
    kinds = {f.kind: f.text for f in answered.points[2].flags}
    assert kinds["verdict"].startswith("verdict PASS → FAIL")
    assert kinds["paired"].startswith("McNemar exact (one-sided)") and "vs run-a" in kinds["paired"]
    (flag,) = similarity.points[2].flags
    assert flag.kind == "paired" and flag.text.startswith("Wilcoxon signed-rank (one-sided)")

    out = pytester.path / "trend"
    with pytest.raises(SystemExit) as exc:
        main(["trend", str(root), "--out", str(out), "--fail-on-regression"])
    assert exc.value.code == 1
    md = (out / "trend.md").read_text(encoding="utf-8")
    assert "**2 flagged gate-night(s)**" in md and "![gate trends](trend.png)" in md
    assert "| run-c | 0.4" in md
    assert (out / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same nights named one by one (evidence files and directories mixed)
    files = [root / "run-c" / "evidence.jsonl", root / "run-a", root / "run-b"]
    assert [n.label for n in find_nights(files)] == ["run-b", "run-a", "run-c"]


def test_paired_test_directions_and_no_flag_without_change() -> None:
    prev = {f"i{k}": 1.0 for k in range(40)}
    cur = {k: (0.0 if n < 15 else 1.0) for n, k in enumerate(prev)}
    flag = paired_test(cur, prev, direction="ge", alpha=0.05)
    assert flag is not None and "15 items 1→0, 0 items 0→1" in flag.text
    assert paired_test(cur, prev, direction="le", alpha=0.05) is None  # fewer events: better
    assert paired_test(prev, prev, direction="ge", alpha=0.05) is None
    assert paired_test({"a": 1.0}, {"a": 0.0}, direction="ge", alpha=0.05) is None  # < 2 pairs
