"""Teachers propose from the record's state only; raw trajectories round-trip atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
    SamplingParams,
)
from harness.data.code_edit.action import parse_action
from harness.data.code_edit.schema import NormalizedRecord
from harness.data.code_edit.trajectory import TeacherStep, read_jsonl_rows
from trainers.code_edit.codemods import CODEMODS
from trainers.code_edit.teacher import ModelTeacher, ProgramTeacher, propose_steps, write_raw


def _rec(rid: str, instruction: str, pre: str, post: str) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=rid,
        source="unit",
        language="python",
        instruction=instruction,
        pre_code=pre,
        post_code=post,
        split="train",
    )


def test_program_teacher_uses_the_codemod_table_and_inverse_mutations() -> None:
    mod = CODEMODS[1]  # print → logging.info
    recs = [
        _rec("cm", mod.instruction, "def f(x):\n    print(x)\n", "def f(x):\n    log(x)\n"),
        _rec(
            "bug",
            "Fix the bug in `f`.",
            "def f(a, b):\n    return a - b\n",
            "def f(a, b):\n    return a + b\n",
        ),
        _rec("none", "Fix the bug in `g`.", "def g():\n    return 3\n", "def g():\n    return 2\n"),
    ]
    cm, bug, none = ProgramTeacher().propose(recs)
    assert parse_action(cm).rule == mod.rule and parse_action(cm).fix == mod.fix
    inverse = parse_action(bug)
    assert inverse.rule == {"pattern": "a - b"} and inverse.fix == "a + b"
    assert none == ""  # no operator or comparison to swap: no proposal


class _ScriptedGenerator:
    """Test double (not a model): answers every request with a fixed text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[GenerationRequest] = []

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(backend="scripted", name="scripted-teacher")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.seen.extend(requests)
        return [
            Generation(
                request_id=r.request_id,
                texts=(self.text,),
                finish_reasons=("stop",),
                latency=Latency(total_s=0.0),
                model=self.identity,
                sampling=SamplingParams(),
            )
            for r in requests
        ]


def test_model_teacher_prompts_with_state_only_and_rows_round_trip(tmp_path: Path) -> None:
    rec = _rec("r1", "Rename x.", "x = 1\n", "y = 1\n")
    gen = _ScriptedGenerator("```yaml\nid: a\n```")
    steps = propose_steps(ModelTeacher(gen), [rec])
    assert steps[0].teacher == "model:scripted-teacher" and steps[0].action_text == gen.text
    prompt = " ".join(m.content for m in gen.seen[0].messages or ())
    assert "x = 1" in prompt and "y = 1" not in prompt  # post_code never reaches the teacher
    path = write_raw(steps, tmp_path / "raw" / "t.jsonl")
    back, problems = read_jsonl_rows(path, TeacherStep)
    assert back == steps and problems == []
    path.write_text(path.read_text() + '{"id": "x"}\n', encoding="utf-8")
    _, problems = read_jsonl_rows(path, TeacherStep)
    assert len(problems) == 1 and ":2: field 'record_id'" in problems[0]


def test_cli_writes_raw_steps_for_train_and_dev_only(tmp_path: Path) -> None:
    from harness.data.code_edit.store import write_processed
    from trainers.code_edit.teacher import main

    pre, post = "def f(a, b):\n    return a - b\n", "def f(a, b):\n    return a + b\n"
    recs = [
        NormalizedRecord.build(
            id=f"r-{split}",
            source="unit",
            language="python",
            instruction="Fix the bug in `f`.",
            pre_code=pre,
            post_code=post,
            split=split,
        )
        for split in ("train", "dev", "test")
    ]
    write_processed(recs, root=tmp_path / "processed", name="unit", generator="test")
    out = tmp_path / "raw.jsonl"
    assert main(["--root", str(tmp_path / "processed"), "--out", str(out)]) == 0
    steps, problems = read_jsonl_rows(out, TeacherStep)
    assert problems == [] and sorted(s.record_id for s in steps) == ["r-dev", "r-train"]
    assert all(parse_action(s.action_text).fix == "a + b" for s in steps)
