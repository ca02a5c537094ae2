"""HumanEval loading, completion clean-up and program assembly (harness/evaluators/humaneval.py)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import DataValidationError
from harness.evaluators.humaneval import (
    STOP_SEQUENCES,
    HumanEvalTask,
    build_program,
    build_public_probe,
    clean_completion,
    completion_compiles,
    dataset_path,
    file_digest,
    load_tasks,
    public_examples,
    truncate_at_stops,
)


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "task_id": "T/0",
        "prompt": 'def f(x):\n    """Double.\n    >>> f(2)\n    4\n    """\n',
        "canonical_solution": "    return 2 * x\n",
        "test": "def check(candidate):\n    assert candidate(3) == 6\n",
        "entry_point": "f",
    }
    row.update(over)
    return row


def _write(tmp_path: Path, rows: list[object], *, gz: bool = False) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    if gz:
        path = tmp_path / "he.jsonl.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = tmp_path / "he.jsonl"
        path.write_text(text)
    return path


def test_wheel_has_all_164_tasks_in_order() -> None:
    tasks = load_tasks()
    assert len(tasks) == 164
    assert tasks[0].task_id == "HumanEval/0" and tasks[-1].task_id == "HumanEval/163"
    assert all(t.entry_point.isidentifier() for t in tasks)
    assert file_digest(dataset_path()).startswith("sha256:")


def test_limit_and_task_ids_select_subsets() -> None:
    assert [t.task_id for t in load_tasks(limit=3)] == [f"HumanEval/{i}" for i in range(3)]
    picked = load_tasks(task_ids=["HumanEval/7", "HumanEval/2"])
    assert [t.task_id for t in picked] == ["HumanEval/7", "HumanEval/2"]
    with pytest.raises(DataValidationError, match="unknown task_id"):
        load_tasks(task_ids=["HumanEval/999"])
    with pytest.raises(DataValidationError, match="limit=0"):
        load_tasks(limit=0)


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzipped_files(tmp_path: Path, gz: bool) -> None:
    tasks = load_tasks(path=_write(tmp_path, [_row(), _row(task_id="T/1")], gz=gz))
    assert [t.task_id for t in tasks] == ["T/0", "T/1"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["{not json"], r"he\.jsonl:1: not valid JSON"),
        ([_row(), "[1, 2]"], r"he\.jsonl:2: row must be a JSON object"),
        ([_row(prompt="")], r"he\.jsonl:1: field 'prompt'=''"),
        ([{k: v for k, v in _row().items() if k != "test"}], r"field 'test'=None"),
        ([_row(entry_point="not valid")], r"field 'entry_point'='not valid' is not a Python"),
        ([_row(canonical_solution=3)], r"field 'canonical_solution'=3"),
    ],
)
def test_bad_rows_name_file_line_field_and_value(
    tmp_path: Path, rows: list[object], message: str
) -> None:
    with pytest.raises(DataValidationError, match=message):
        load_tasks(path=_write(tmp_path, rows))


def test_missing_or_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="cannot read HumanEval data"):
        load_tasks(path=tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataValidationError, match="no tasks found"):
        load_tasks(path=empty)


def test_truncate_at_earliest_top_level_stop() -> None:
    body = "    x = 1\n    if x:\n        return x\n"
    assert truncate_at_stops(body + "\ndef other():\n    pass\n") == body
    assert truncate_at_stops(body + "\nprint(1)\n#c\n") == body
    assert truncate_at_stops(body) == body  # indented "if" is not a stop
    assert "\ndef" in STOP_SEQUENCES


def test_clean_completion_handles_base_and_chat_outputs() -> None:
    task = HumanEvalTask(**_row())  # type: ignore[arg-type]
    assert clean_completion(task, "    return 2 * x\n\ndef junk():\n") == "    return 2 * x\n"
    chat = "Sure!\n```python\ndef f(x):\n    return x + x\n```\nDone."
    cleaned = clean_completion(task, chat)
    assert cleaned.startswith("    pass\n") and "def f(x):\n    return x + x" in cleaned
    body_only = "```python\n    return x * 2\n```"
    assert clean_completion(task, body_only) == "    return x * 2\n"


def _exit_code(program: str) -> int:
    # a subprocess: the guarded program installs an audit hook, which must not outlive it
    return subprocess.run([sys.executable, "-c", program], capture_output=True).returncode


def test_build_program_runs_the_reference_check_behind_the_guard() -> None:
    task = HumanEvalTask(**_row())  # type: ignore[arg-type]
    program = build_program(task, task.canonical_solution)
    # prompt + completion run as one module (the reference assembly), the test after it
    assert repr(task.prompt + task.canonical_solution) in program
    assert repr(task.test) in program and repr(task.entry_point) in program
    assert _exit_code(program) == 0
    assert _exit_code(build_program(task, "    return 2 * x + 1\n")) == 1


def test_completion_compiles_judges_prompt_plus_completion() -> None:
    task = HumanEvalTask(**_row())  # type: ignore[arg-type]
    assert completion_compiles(task, "    return 2 * x\n")
    assert not completion_compiles(task, "    return 2 *\n")


def test_public_examples_come_from_the_docstring_only() -> None:
    he0 = load_tasks(task_ids=["HumanEval/0"])[0]
    examples = public_examples(he0)
    assert examples == [
        ("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        ("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"),
    ]
    with_examples = [t for t in load_tasks() if public_examples(t)]
    assert 60 <= len(with_examples) <= 80  # the rest have none in >>> form


def test_public_probe_scores_examples_without_hidden_tests() -> None:
    task = HumanEvalTask(**_row())  # type: ignore[arg-type]
    for completion, passed in [("    return 2 * x\n", 1), ("    return x\n", 0)]:
        probe = build_public_probe(task, completion)
        assert "check(" not in probe
        ns: dict[str, object] = {}
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(probe, "probe", "exec"), ns)
        line = out.getvalue().strip().splitlines()[-1]
        assert json.loads(line.removeprefix("__PUBLIC__")) == {"passed": passed, "total": 1}
