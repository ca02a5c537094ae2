"""Teachers that propose ast-grep actions for SRL trajectories, written raw.

A :class:`Teacher` sees a record's state (instruction, language, pre-code) —
never its ``post_code``, ``tests`` or stored ``action`` — and returns one raw
action text per record ("" when it has nothing to propose).  Two kinds:

* :class:`ProgramTeacher` (default) — the embedded generator's own knowledge: the
  codemod whose instruction the record carries (``codemods.CODEMODS``), and for a
  bug-fix record an *inverse mutation* guessed from the buggy code (the first
  operator/comparison swap :func:`~trainers.code_edit.mutations.candidates` finds,
  as a rule whose pattern is that expression's text).  The guess is often wrong —
  that is what the sandbox filter is for.
* :class:`ModelTeacher` — any :class:`~harness.backends.base.Generator` (e.g. a model
  behind the OpenAI-compatible backend), prompted with the Stage 1 chat shape.

:func:`write_raw` stores the proposals as :class:`TeacherStep` JSONL atomically,
exactly as emitted; nothing is verified here (trainers never import evaluators).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import yaml

from harness.atomic import atomic_write_jsonl
from harness.backends.base import GenerationRequest, Generator, Message, SamplingParams
from harness.data.code_edit.schema import NormalizedRecord
from harness.data.code_edit.trajectory import TeacherStep
from trainers.code_edit.codemods import CODEMODS, Codemod
from trainers.code_edit.mutations import Mutation, candidates

__all__ = [
    "SYSTEM_PROMPT",
    "ModelTeacher",
    "ProgramTeacher",
    "Teacher",
    "main",
    "propose_steps",
    "write_raw",
]

SYSTEM_PROMPT = (
    "You edit code with ast-grep. Answer with one ast-grep rule in YAML (language, rule, "
    "fix) that performs the requested change."
)


class Teacher(Protocol):
    """Proposes one raw action text per record from the record's state only."""

    @property
    def name(self) -> str: ...

    def propose(self, records: Sequence[NormalizedRecord]) -> list[str]: ...


def _rule_text(rid: str, language: str, pattern: str, fix: str) -> str:
    doc = {"id": rid, "language": language, "rule": {"pattern": pattern}, "fix": fix}
    return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True)


def _inverse_mutation(pre_code: str) -> str:
    """A rule undoing the first operator/comparison swap found in ``pre_code`` ("" if none)."""
    try:
        tree = ast.parse(pre_code)
    except SyntaxError:
        return ""
    lines = pre_code.splitlines()
    found: list[Mutation] = [
        m for m in candidates(pre_code) if m.kind in ("operator_swap", "comparison_swap")
    ]
    for m in found:
        for node in ast.walk(tree):
            if not isinstance(node, ast.BinOp | ast.Compare) or node.lineno != m.line:
                continue
            if node.end_lineno != m.line or node.end_col_offset is None:
                continue
            if not node.col_offset <= m.col < node.end_col_offset:
                continue
            text = lines[m.line - 1][node.col_offset : node.end_col_offset]
            at = m.col - node.col_offset
            if text[at : at + len(m.old)] != m.old:
                continue
            fixed = text[:at] + m.new + text[at + len(m.old) :]
            return _rule_text("inverse-mutation", "python", text, fixed)
    return ""


class ProgramTeacher:
    """The embedded generator as a teacher (codemod table + inverse-mutation guesses)."""

    def __init__(self, codemods: Sequence[Codemod] = CODEMODS) -> None:
        self._by_instruction = {c.instruction: c for c in codemods}

    @property
    def name(self) -> str:
        return "program:codemod"

    def propose(self, records: Sequence[NormalizedRecord]) -> list[str]:
        out: list[str] = []
        for r in records:
            mod = self._by_instruction.get(r.instruction)
            if mod is not None:
                out.append(mod.action().rule_yaml())
            elif r.language == "python":
                out.append(_inverse_mutation(r.pre_code))
            else:
                out.append("")
        return out


class ModelTeacher:
    """A model behind any ``Generator`` backend, greedy, one action per record."""

    def __init__(self, generator: Generator, *, max_tokens: int = 256) -> None:
        self._gen = generator
        self._sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    @property
    def name(self) -> str:
        return f"model:{self._gen.identity.name}"

    def propose(self, records: Sequence[NormalizedRecord]) -> list[str]:
        requests = [
            GenerationRequest(
                request_id=f"teacher/{r.id}",
                messages=(
                    Message(role="system", content=SYSTEM_PROMPT),
                    Message(
                        role="user",
                        content=f"{r.instruction}\n\n```{r.language}\n{r.pre_code}```",
                    ),
                ),
                sampling=self._sampling,
            )
            for r in records
        ]
        return [g.text for g in self._gen.generate(requests)]


def propose_steps(teacher: Teacher, records: Sequence[NormalizedRecord]) -> list[TeacherStep]:
    """The teacher's raw proposal for every record, as :class:`TeacherStep` rows."""
    texts = teacher.propose(records)
    return [
        TeacherStep(
            id=f"{teacher.name}/{r.id}",
            record_id=r.id,
            source=r.source,
            split=r.split,
            teacher=teacher.name,
            language=r.language,
            instruction=r.instruction,
            pre_code=r.pre_code,
            action_text=text,
        )
        for r, text in zip(records, texts, strict=True)
    ]


def write_raw(steps: Sequence[TeacherStep], path: Path) -> Path:
    """Write raw trajectories as JSONL, atomically (a crash leaves the old file or none)."""
    return atomic_write_jsonl(path, [s.model_dump_json() for s in steps])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainers.code_edit.teacher --root DIR --out RAW.jsonl [--base-url U --model M]``

    Raw trajectories of the program teacher (default) or of a model behind an
    OpenAI-compatible server, on the train and dev records of a processed root (the test
    split is never proposed for).  Verify them with ``harness data code-edit filter``.
    """
    import argparse

    from harness.data.code_edit.schema import Split
    from harness.data.code_edit.store import default_root, read_processed

    ap = argparse.ArgumentParser(prog="python -m trainers.code_edit.teacher")
    ap.add_argument("--root", type=Path, default=None, help="processed code-edit root")
    ap.add_argument("--out", type=Path, required=True, help="raw trajectories JSONL to write")
    ap.add_argument("--base-url", default=None, help="OpenAI-compatible server (model teacher)")
    ap.add_argument("--model", default=None, help="model name on that server")
    args = ap.parse_args(argv)
    rows = read_processed(root=args.root or default_root())
    records = [r for r in rows if r.split is not Split.TEST]
    teacher: Teacher
    if args.base_url:
        from harness.backends.openai_compat import OpenAICompatGenerator

        if not args.model:
            ap.error("--model is required with --base-url")
        teacher = ModelTeacher(OpenAICompatGenerator(base_url=args.base_url, model=args.model))
    else:
        teacher = ProgramTeacher()
    steps = propose_steps(teacher, records)
    write_raw(steps, args.out)
    print(f"{len(steps)} raw steps from {teacher.name} → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
