"""Sharded runs merged by ``harness merge`` decide exactly as one unsharded run.

A small synthetic phase (proportion, clustered pass@1 from a shard-aware test,
a bounded mean, a paired difference with a baseline, an exact count and a
control) runs through the real pytest plugin once unsharded and as shards
1/3, 2/3, 3/3; the merged evidence must equal the unsharded one on every
decision field, byte for byte.  Then the merge must refuse a missing, a
duplicated and a mismatched shard, and a shard file that lost an item.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

# imported before pytester snapshots sys.modules (see tests/harness/test_plugin.py)
import harness.gate
import harness.merge
import harness.report.plots
import harness.report.terminal
import harness.report.writer
import harness.shard_manifest
import harness.shard_record
from harness.cli import main
from harness.merge import merge_shards
from harness.report.junit import read_gate_properties
from harness.shard import ShardError

assert harness.gate and harness.report.plots and harness.report.terminal
assert harness.report.writer and harness.shard_record and harness.shard_manifest and harness.merge

PHASE_YAML = """\
phase: demo
alpha: 0.05
multiplicity: holm
gates:
  - id: rate
    metric: proportion
    direction: ge
    tiers: {primary: 0.6}
  - id: pass1
    metric: pass_at_k
    params: {k: 1}
    direction: ge
    tiers: {primary: 0.3}
  - id: sim
    metric: mean
    bounds: [0, 1]
    direction: le
    tiers: {primary: 0.5}
  - id: diff
    metric: paired_difference
    direction: ge
    tiers: {primary: 0.0}
  - id: violations
    metric: count
    direction: le
    tiers: {primary: 0}
"""

TEST_FILE = """\
import hashlib, os
import pytest
from harness.outcomes import Outcome

DATA = os.environ.get("DEMO_DATA_DIGEST", "sha256:data")


def u(key):  # a deterministic pseudo-random number in [0, 1) per key
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def kw():
    return {"model_digest": "sha256:model", "data_digest": DATA}


@pytest.mark.phase("demo")
@pytest.mark.gate("rate")
def test_rate(gate):
    outs = [Outcome(f"q{i:03d}", float(u(f"r{i}") < 0.8)) for i in range(150)]
    gate.check(outs, extra={"n_prompts": 150, "first": outs[0].item_id}, **kw())


@pytest.mark.phase("demo")
@pytest.mark.gate("pass1")
def test_pass1(gate):  # shard-aware: evaluates only this shard's tasks
    tasks = gate.shard_items([f"task/{t}" for t in range(45)], key=lambda t: t)
    outs = [Outcome(f"{t}#{s}", float(u(t + str(s)) < 0.55), cluster=t)
            for t in tasks for s in range(4)]
    gate.check(outs, raw_outputs=[{"task": t, "samples": 4} for t in tasks], **kw())


@pytest.mark.phase("demo")
@pytest.mark.gate("sim")
def test_sim(gate):
    gate.check([Outcome(f"s{i}", 0.2 + 0.4 * u(f"s{i}")) for i in range(80)], **kw())


@pytest.mark.phase("demo")
@pytest.mark.gate("diff")
def test_diff(gate):
    cur = [Outcome(f"p{i}", float(u(f"c{i}") < 0.7)) for i in range(120)]
    base = [Outcome(f"p{i}", float(u(f"b{i}") < 0.5)) for i in range(120)]
    gate.check(cur, baseline=base, **kw())


@pytest.mark.phase("demo")
@pytest.mark.gate("violations")
def test_violations(gate):
    gate.check([Outcome(f"row{i}", 0.0) for i in range(60)], **kw())


@pytest.mark.phase("demo")
@pytest.mark.gate("rate")
def test_rate_control_oracle(gate):
    gate.check([Outcome(f"q{i:03d}", 1.0) for i in range(150)], subject="oracle", expect="PASS")
"""

DECISION_FIELDS = ("estimate", "decision", "p_value", "adjustment", "expect", "alpha_decision")


def _phase(pytester: pytest.Pytester) -> None:
    pytester.mkdir("gates")
    (pytester.path / "gates" / "demo.yaml").write_text(PHASE_YAML, encoding="utf-8")
    pytester.makepyfile(test_demo=TEST_FILE)


def _run(pytester: pytest.Pytester, out: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--evidence-dir",
        str(out),
        "--junitxml",
        str(out / "junit.xml"),
        *extra,
    )


def _shards(pytester: pytest.Pytester, n: int = 3, prefix: str = "shard") -> list[Path]:
    dirs = []
    for i in range(1, n + 1):
        out = pytester.path / f"{prefix}{i}"
        result = _run(pytester, out, "--shard", f"{i}/{n}")
        assert result.ret == 0, result.stdout.str()
        result.assert_outcomes(skipped=6)  # recorded, not decided
        dirs.append(out)
    return dirs


def _decisions(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec: dict[str, Any] = json.loads(line)
        key = (rec["gate"], rec["subject"], rec["lane"])
        out[key] = {f: json.dumps(rec[f], sort_keys=True) for f in DECISION_FIELDS}
    return out


def test_three_shards_merge_to_the_unsharded_decisions(pytester: pytest.Pytester) -> None:
    _phase(pytester)
    whole = pytester.path / "whole"
    _run(pytester, whole)
    dirs = _shards(pytester)
    # shards really split the work: each evaluated about a third of the 45 tasks
    sizes = []
    for d in dirs:
        doc = json.loads(next((d / "shards" / "demo" / "pass1").glob("*.json")).read_text())
        sizes.append(len({row["cluster"] for row in doc["outcomes"]["rows"]}))
    assert sum(sizes) == 45 and max(sizes) < 30
    merged = pytester.path / "merged"
    result = merge_shards(dirs, merged)
    expected = _decisions(whole / "evidence.jsonl")
    got = _decisions(merged / "evidence.jsonl")
    assert set(got) == set(expected) and len(got) == 6
    for key in expected:
        assert got[key] == expected[key], key
    verdicts = {k[0]: json.loads(v["decision"])["verdict"] for k, v in got.items()}
    assert verdicts["rate"] == "PASS" and verdicts["violations"] == "PASS"
    assert {r.family_size for r in result.records} == {4}  # count gates take no share of α
    # the report files exist and agree with the evidence
    assert "Merged from 3 shards" in (merged / "gate-report.md").read_text(encoding="utf-8")
    sets = [s for sets in read_gate_properties(merged / "junit.xml").values() for s in sets]
    finals = {(s["id"], s["subject"]): s["final_verdict"] for s in sets}
    whole_sets = [s for ss in read_gate_properties(whole / "junit.xml").values() for s in ss]
    assert len(finals) == 6
    assert finals == {(s["id"], s["subject"]): s["final_verdict"] for s in whole_sets}
    # merged raw outputs: every task's row once
    rec = next(r for r in result.records if r.gate == "pass1")
    assert rec.raw_output is not None
    rows = (merged / rec.raw_output).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 45
    assert result.exit_code == (0 if result.account.passed else 1)
    # one shard N=1 is the unsharded run too
    single = _shards(pytester, n=1, prefix="one")
    assert _decisions(merge_shards(single, pytester.path / "m1").out / "evidence.jsonl") == expected


def test_merge_refuses_missing_duplicated_and_mismatched_shards(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _phase(pytester)
    d1, d2, d3 = _shards(pytester)
    out = pytester.path / "m"
    with pytest.raises(ShardError, match=r"shard\(s\) 3/3 missing \(got 2 of 3\)"):
        merge_shards([d1, d2], out)
    with pytest.raises(ShardError, match="shard 2/3 given twice"):
        merge_shards([d1, d2, d2, d3], out)
    copy = pytester.path / "copy2"
    shutil.copytree(d2, copy)
    with pytest.raises(ShardError, match=f"given twice: {d2} and {copy}"):
        merge_shards([d1, d2, copy, d3], out)
    # a shard of another N
    other = pytester.path / "other"
    _run(pytester, other, "--shard", "2/2")
    with pytest.raises(ShardError, match="disagree on N"):
        merge_shards([d1, other, d3], out)
    # a shard run on other data: the data digest names the gate and both values
    monkeypatch.setenv("DEMO_DATA_DIGEST", "sha256:other-data")
    drift = pytester.path / "drift3"
    _run(pytester, drift, "--shard", "3/3")
    with pytest.raises(ShardError, match=r"data digest .*'sha256:data'.*'sha256:other-data'"):
        merge_shards([d1, d2, drift], out)
    # a shard file that lost an item (or was edited) never yields a smaller n
    rate = next((d2 / "shards" / "demo" / "rate").glob("model.real.json"))
    doc = json.loads(rate.read_text())
    doc["outcomes"]["rows"].pop()
    rate.write_text(json.dumps(doc))
    with pytest.raises(ShardError, match=r"gate demo/rate .*1 of 150 items missing"):
        merge_shards([d1, d2, d3], out)
    doc["outcomes"]["rows"].append(dict(doc["outcomes"]["rows"][0]))
    rate.write_text(json.dumps(doc))
    with pytest.raises(ShardError, match="recorded twice"):
        merge_shards([d1, d2, d3], out)
    # the command line: one red line, exit 2
    with pytest.raises(SystemExit) as exc:
        main(["merge", str(d1), str(d2), "--out", str(out)])
    assert exc.value.code == 2


def test_bad_shard_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    _phase(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--shard", "1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--shard 1/2 needs --evidence-dir*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--shard", "3/2", "--evidence-dir", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
