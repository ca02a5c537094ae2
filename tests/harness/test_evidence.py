"""Evidence records and the crash-safe JSONL store."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.errors import EvidenceError
from harness.evidence import (
    EvidenceRecord,
    EvidenceStore,
    Lane,
    atomic_write_text,
    code_digest,
    read_evidence,
    sha256_file,
    sha256_json,
)


def make_record(**overrides: Any) -> EvidenceRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    data: dict[str, Any] = {
        "phase": "demo",
        "gate": "g",
        "metric": "proportion",
        "direction": "ge",
        "alpha": 0.05,
        "alpha_decision": 0.05,
        "estimate": {
            "value": 0.5,
            "lo": 0.4,
            "hi": 0.6,
            "n": 100,
            "method": "m",
            "alpha": 0.1,
            "sided": "two",
            "extra": {},
        },
        "decision": {
            "verdict": "INCONCLUSIVE",
            "tier": "none",
            "reason": "r",
            "threshold": 0.5,
            "alpha": 0.05,
            "rule": "bound",
            "n_needed": 400,
            "tier_verdicts": [],
        },
        "started": now,
        "finished": now,
    }
    data.update(overrides)
    return EvidenceRecord.model_validate(data)


def test_append_and_read_round_trip_including_nan(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "ev")
    a = make_record(gate="a", p_value=0.01)
    b = make_record(
        gate="b", lane=Lane.CONTROL, expect="PASS", estimate={**a.estimate, "hi": math.nan}
    )
    store.append(a)
    store.append(b)
    log = read_evidence(tmp_path / "ev")  # a directory resolves to its evidence.jsonl
    assert log.warnings == [] and log.torn_line is None
    assert [r.gate for r in log.records] == ["a", "b"]
    assert log.records[0] == a
    assert math.isnan(log.records[1].estimate_obj().hi)
    assert log.records[1].control_ok is False  # expected PASS, verdict INCONCLUSIVE


def test_torn_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    store.append(make_record(gate="a"))
    store.append(make_record(gate="b"))
    whole = make_record(gate="c").model_dump_json()
    with store.path.open("a") as fh:  # a run killed half-way through a write
        fh.write(whole[: len(whole) // 2])
    log = read_evidence(store.path)
    assert [r.gate for r in log.records] == ["a", "b"]
    assert log.torn_line == 3
    assert "line is incomplete" in log.warnings[0] and ":3:" in log.warnings[0]


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    good = make_record().model_dump_json()
    path.write_text(f"{good}\n{{oops\n{good}\n")
    with pytest.raises(EvidenceError, match=r"evidence.jsonl:2: not valid JSON"):
        read_evidence(path)


def test_wrong_schema_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    data = json.loads(make_record().model_dump_json())
    data["lane"] = "staging"
    path.write_text(json.dumps(data) + "\n")
    with pytest.raises(EvidenceError, match=r":1: field 'lane'.*'staging'"):
        read_evidence(path)


def test_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="cannot read evidence"):
        read_evidence(tmp_path / "nope.jsonl")


def _writer(directory: str, worker: int, count: int) -> None:
    store = EvidenceStore(directory)
    for i in range(count):
        store.append(make_record(gate=f"w{worker}-{i}", extra={"pad": "x" * 5000}))


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = read_evidence(tmp_path / "evidence.jsonl")
    assert len(log.records) == 160 and not log.warnings
    assert len({r.gate for r in log.records}) == 160


def test_rewrite_is_atomic_and_raw_paths_are_relative(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    store.append(make_record(gate="x"))
    store.rewrite([make_record(gate="b"), make_record(gate="a")])
    assert [r.gate for r in store.read().records] == ["b", "a"]
    rel = store.write_raw("demo", "g", "oracle/odd name", [{"item_id": "1", "value": 1.0}])
    assert rel == "raw/demo/g--oracle_odd_name.jsonl"
    assert json.loads((tmp_path / rel).read_text()) == {"item_id": "1", "value": 1.0}
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_atomic_write_failure_is_an_evidence_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EvidenceError, match="cannot write"):
        atomic_write_text(blocker / "report.md", "text")


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    atomic_write_text(path, "old " * 1000)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["r.md"]


def test_digests_are_stable_and_typed(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(b"abc")
    first = sha256_file(tmp_path / "d")
    assert first == sha256_file(tmp_path / "d") and first.startswith("sha256:")
    (tmp_path / "d" / "a.bin").write_bytes(b"abd")
    assert sha256_file(tmp_path / "d") != first
    assert sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    assert code_digest().startswith(("git:", "sha256:"))


def test_sort_key_orders_lanes_and_gates() -> None:
    recs = [
        make_record(gate="b", gate_index=1, lane=Lane.CONTROL, subject="oracle"),
        make_record(gate="b", gate_index=1),
        make_record(gate="a", gate_index=0),
    ]
    ordered = sorted(recs, key=EvidenceRecord.sort_key)
    assert [(r.gate, r.lane) for r in ordered] == [
        ("a", Lane.REAL),
        ("b", Lane.REAL),
        ("b", Lane.CONTROL),
    ]


def test_second_raw_file_of_the_same_gate_and_subject_gets_a_new_name(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    first = store.write_raw("demo", "g", "model", [{"item_id": "1", "value": 1.0}])
    second = store.write_raw("demo", "g", "model", [{"item_id": "1", "value": 0.0}])
    third = store.write_raw("demo", "g", "model", [])
    assert (first, second, third) == (
        "raw/demo/g--model.jsonl",
        "raw/demo/g--model~2.jsonl",
        "raw/demo/g--model~3.jsonl",
    )
    assert json.loads((tmp_path / first).read_text())["value"] == 1.0  # never overwritten
    assert json.loads((tmp_path / second).read_text())["value"] == 0.0
    assert (tmp_path / third).read_text() == ""
    # a subject whose name looks like a suffix cannot take another subject's file
    assert store.write_raw("demo", "g", "model~2", []) == "raw/demo/g--model_2.jsonl"
    assert sorted(p.name for p in (tmp_path / "raw" / "demo").iterdir()) == [
        "g--model.jsonl",
        "g--model_2.jsonl",
        "g--model~2.jsonl",
        "g--model~3.jsonl",
    ]


def _raw_writer(directory: str, worker: int, count: int) -> None:
    store = EvidenceStore(directory)
    for i in range(count):
        store.write_raw("demo", "g", "model", [{"worker": worker, "i": i, "pad": "x" * 20_000}])


def test_concurrent_raw_writers_never_share_or_lose_a_file(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_raw_writer, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    files = sorted((tmp_path / "raw" / "demo").iterdir())
    assert len(files) == 60
    rows = [json.loads(f.read_text()) for f in files]  # every file whole
    assert {(r["worker"], r["i"]) for r in rows} == {(w, i) for w in range(4) for i in range(15)}
    assert not list(tmp_path.rglob("*.tmp"))


def test_schema_1_records_without_adjustment_still_read(tmp_path: Path) -> None:
    data = json.loads(make_record().model_dump_json())
    data["schema_version"] = 1
    del data["adjustment"]
    (tmp_path / "evidence.jsonl").write_text(json.dumps(data) + "\n")
    [rec] = read_evidence(tmp_path).records
    assert rec.adjustment is None and rec.schema_version == 1
    assert make_record().schema_version == 2


def test_adjustment_round_trips(tmp_path: Path) -> None:
    from harness.decision import Verdict
    from harness.evidence import Adjustment

    adj = Adjustment(
        method="holm",
        family_size=3,
        family_tested=2,
        rank=2,
        p_adjusted=0.04,
        alpha=0.05,
        alpha_step=0.025,
        upgraded=True,
        verdict=Verdict.PASS,
    )
    store = EvidenceStore(tmp_path)
    store.rewrite([make_record(p_value=0.02, adjustment=adj)])
    [rec] = store.read().records
    assert rec.adjustment == adj


def test_repo_digest_names_the_users_repo_and_its_dirty_gates_and_tests(tmp_path: Path) -> None:
    import subprocess

    from harness.evidence import _CODE_DIRS, harness_identity, repo_digest

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode().strip()

    (tmp_path / "gates").mkdir()
    (tmp_path / "gates" / "ranker.yaml").write_text("phase: ranker\n")
    (tmp_path / "test_ranker.py").write_text("def test_x():\n    pass\n")
    (tmp_path / "notes.txt").write_text("unrelated\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    head = git("rev-parse", "HEAD")
    paths = (str(tmp_path / "gates"), str(tmp_path / "test_ranker.py"))
    assert repo_digest(paths) == f"git:{head}"
    (tmp_path / "notes.txt").write_text("changed, but not a gate or test file\n")
    repo_digest.cache_clear()
    assert repo_digest(paths) == f"git:{head}"
    (tmp_path / "gates" / "ranker.yaml").write_text("phase: ranker\nalpha: 0.01\n")
    repo_digest.cache_clear()
    dirty = repo_digest(paths)
    assert dirty.startswith(f"git:{head}+dirty.")
    # the installed gate-harness is identified separately, and its digest covers suites/
    assert harness_identity().startswith("gate-harness ")
    assert "suites" in _CODE_DIRS
