"""Teacher trajectories for SRL: the raw step a teacher proposed and the verified clean step.

A teacher (``trainers.code_edit.teacher``) sees one record's state — instruction,
language, pre-code — and proposes an ast-grep action as text.  The proposal is
written *raw* (:class:`TeacherStep`, exactly what the teacher said), then the
sandbox filter (``harness.evaluators.code_edit_trajectories``) keeps only the
steps whose action verifiably performs the edit and writes them as
:class:`SRLStep` rows, the SRL trainer's data: the state plus the canonical rule
YAML of the verified action.  Both are frozen pydantic rows that reject unknown
fields, so a format drift between writer and reader fails loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.data.code_edit.schema import Split
from harness.errors import DataValidationError

__all__ = ["SRLStep", "TeacherStep", "read_jsonl_rows"]

T = TypeVar("T", bound=BaseModel)


class TeacherStep(BaseModel):
    """One raw proposal: which teacher, for which record, and the action text it emitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    record_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    split: Split
    teacher: str = Field(min_length=1)  # e.g. "program:codemod" or "model:<name>"
    language: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    pre_code: str = Field(min_length=1)
    action_text: str  # raw, untrusted; "" when the teacher had no proposal


class SRLStep(BaseModel):
    """One verified step of the clean SRL dataset (state → expert action)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    record_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    split: Split
    teacher: str = Field(min_length=1)
    language: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    pre_code: str = Field(min_length=1)
    action: str = Field(min_length=1)  # canonical rule YAML (AstGrepAction.rule_yaml)
    verified: str = Field(min_length=1)  # how: "matches_post_code" or "tests_pass"


def read_jsonl_rows(path: Path, model: type[T]) -> tuple[list[T], list[str]]:
    """Valid rows of ``path`` and one ``file:line: field ...`` problem per invalid row."""
    rows: list[T] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({exc}); fix: check the path") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "<row>"
            problems.append(f"{path}:{n}: field '{field}': {err['msg']}")
    return rows, problems
