"""The codegen phase under ``--shard``: each shard runs only its tasks, the merge equals one run.

Cheap check: a shard's slice, run with the full list's ladder subset (``deep_ids``),
reproduces exactly the per-task records of the unsharded run — the same tasks get the
n = 16 ladder on every shard, and samples do not depend on which tasks share a batch.
Slow check: the shipped codegen suite in the replay lane, unsharded and as shards 1/2,
2/2 merged by ``harness merge``, gives the same decision fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.evaluators.codegen import CodegenConfig, ControlSubject, TaskRecord, run_codegen
from harness.evaluators.controls import MutantControl
from harness.evaluators.humaneval import load_tasks
from harness.shard import ShardSpec
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

ROOT = Path(__file__).resolve().parents[3]
DECISION_FIELDS = ("estimate", "decision", "p_value", "adjustment")


@pytest.fixture(scope="module")
def local_sandbox() -> Iterator[Sandbox]:
    box = LocalSandbox()
    try:
        yield box
    finally:
        box.close()


def _record(t: TaskRecord) -> tuple[Any, ...]:
    return (t.task_id, t.deep, t.selected, [(s.index, s.status, s.passed) for s in t.samples])


def test_shard_slices_reproduce_the_unsharded_run(local_sandbox: Sandbox) -> None:
    tasks = load_tasks(limit=12)
    cfg = CodegenConfig(seed=3, deep_tasks=5, task_batch=4)
    mutant = ControlSubject(MutantControl(seed=3), tasks)  # faults chosen on the full list
    whole = run_codegen(mutant, tasks, local_sandbox, cfg, data_digest="d")
    deep_ids = frozenset(t.task_id for t in tasks[:5])
    parts: dict[str, TaskRecord] = {}
    sizes = []
    for i in (1, 2):
        mine = ShardSpec(i, 2).take(tasks, key=lambda t: t.task_id)
        run = run_codegen(mutant, mine, local_sandbox, cfg, data_digest="d", deep_ids=deep_ids)
        assert [t.task_id for t in run.tasks] == [t.task_id for t in mine]
        assert run.deep_planned == sum(t.task_id in deep_ids for t in mine)
        sizes.append(len(mine))
        parts.update({t.task_id: t for t in run.tasks})
    assert min(sizes) > 0 and sum(sizes) == len(tasks)  # a real split, every task once
    assert [_record(parts[t.task_id]) for t in tasks] == [_record(t) for t in whole.tasks]
    assert sum(t.deep for t in whole.tasks) == 5


def _harness(*args: str, cwd: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_CODEGEN_SUBJECTS": "model"}
    code = "import sys; from harness.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode


def _decisions(evidence: Path) -> dict[tuple[str, str, str], str]:
    out = {}
    for line in evidence.read_text().splitlines():
        r = json.loads(line)
        key = (r["gate"], r["subject"], r["lane"])
        out[key] = json.dumps({f: r[f] for f in DECISION_FIELDS}, sort_keys=True)
    return out


@pytest.mark.slow
def test_replay_codegen_sharded_equals_unsharded(tmp_path: Path) -> None:
    """~2-3 min on a loaded 2-core machine: three replay-lane runs of the codegen phase."""
    run = ("run", "--lane", "replay", "--phase", "codegen", "-n", "0")
    _harness(*run, "--out", str(tmp_path / "whole"), cwd=ROOT)
    for i in (1, 2):
        _harness(*run, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}"), cwd=ROOT)
    _harness(
        "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m"), cwd=ROOT
    )
    whole = _decisions(tmp_path / "whole" / "evidence.jsonl")
    merged = _decisions(tmp_path / "m" / "evidence.jsonl")
    assert {"pass_at_1", "pass_at_16", "best_of_16"} <= {g for g, _, _ in whole}
    assert merged == whole
    # each shard really ran a slice of the tasks (the saving), not every task
    for i in (1, 2):
        files = list((tmp_path / f"s{i}" / "shards" / "codegen" / "pass_at_1").glob("*.json"))
        sample = json.loads(files[0].read_text())["outcomes"]
        assert sample["mode"] == "unit" and len({r["cluster"] for r in sample["rows"]}) > 0
        assert len({r["cluster"] for r in sample["rows"]}) < sample["total"]
