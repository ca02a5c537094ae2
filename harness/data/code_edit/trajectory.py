"""Teacher trajectories for SRL: the raw step a teacher proposed and the verified clean step.

A teacher (``trainers.code_edit.teacher``) sees one record's state — instruction,
language, pre-code — and proposes an ast-grep action as text.  The proposal is
written *raw* (:class:`TeacherStep`, exactly what the teacher said), then the
sandbox filter (``harness.evaluators.code_edit_trajectories``) keeps only the
steps whose action verifiably performs the edit and writes them as
:class:`SRLStep` rows, the SRL trainer's data: the state plus the canonical rule
YAML of the verified action.  Both are frozen pydantic rows that reject unknown
fields, so a format drift between writer and reader fails loudly.

:func:`load_srl_dataset` reads one split of the filter's published directory for
the SRL trainer (trainers never import the evaluator that wrote it): the rows, a
digest of the file's bytes (the trainer's cache key covers it, and the evidence
names it) and the filter's per-source ``stats.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.data.code_edit.schema import Split
from harness.errors import DataValidationError

__all__ = ["SRLDataset", "SRLStep", "TeacherStep", "load_srl_dataset", "read_jsonl_rows"]

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


@dataclass(frozen=True)
class SRLDataset:
    """One split of the clean SRL dataset as the trainer reads it, with its identity."""

    root: Path
    split: Split
    steps: tuple[SRLStep, ...]
    #: sha256 of the split file's bytes: row order matters to training, so it is hashed too
    digest: str
    #: the filter's ``stats.json`` (proposed / kept / dropped per source); {} when absent
    stats: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the evidence records about the data a stage trained on."""
        by_source: dict[str, int] = {}
        for s in self.steps:
            by_source[s.source] = by_source.get(s.source, 0) + 1
        return {
            "path": str(self.root / f"{self.split.value}.jsonl"),
            "split": self.split.value,
            "digest": self.digest,
            "rows": len(self.steps),
            "rows_by_source": dict(sorted(by_source.items())),
        }


def load_srl_dataset(root: Path, split: Split = Split.TRAIN) -> SRLDataset:
    """Read ``<root>/<split>.jsonl`` as written by the sandbox filter.

    Strict: a row that is not an :class:`SRLStep`, or one filed under another split,
    is an error naming the file, line and field — the trainer never learns from a row
    the filter did not publish as it is.
    """
    path = Path(root) / f"{split.value}.jsonl"
    if not path.is_file():
        raise DataValidationError(
            f"{path}: no SRL dataset split here; fix: run `harness data code-edit filter RAW "
            f"--out {root}` on the teacher's raw trajectories first"
        )
    data = path.read_bytes()
    rows, problems = read_jsonl_rows(path, SRLStep)
    problems += [
        f"{path}: row '{r.id}': field 'split' = '{r.split.value}', expected '{split.value}'"
        for r in rows
        if r.split is not split
    ]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataValidationError(
            f"{problems[0]}{more}; fix: re-run the filter instead of editing its output"
        )
    stats_path = Path(root) / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
    return SRLDataset(Path(root), split, tuple(rows), hashlib.sha256(data).hexdigest(), stats)
