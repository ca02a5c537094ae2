"""Normalized code-edit records: one row model for every source, with a content hash.

Why one schema: CommitPackFT, EditPackFT, CanItEdit, HumanEvalFix-style sets and
the embedded generator all publish edits in different shapes.  Training and the
split-leakage check need one shape, so every loader converts to
:class:`NormalizedRecord`.  Rows are frozen and reject unknown fields so an
upstream format change fails loudly.  ``content_hash`` digests the language and
the whitespace-trimmed pre/post code (not the instruction: the same edit asked
for in other words is still the same edit), so two splits can be checked for
overlap without comparing full texts.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DatasetMetadata",
    "NormalizedRecord",
    "Split",
    "content_hash",
    "normalize_language",
]


class Split(StrEnum):
    """The three splits: train for fitting, dev for knobs, test judged once."""

    TRAIN = "train"
    DEV = "dev"
    TEST = "test"


#: spellings seen in the published sources → one lowercase name
_LANGUAGE_ALIASES = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "ts": "typescript",
    "c++": "cpp",
    "c#": "csharp",
    "golang": "go",
    "rs": "rust",
    "sh": "shell",
    "bash": "shell",
}


def normalize_language(name: str) -> str:
    """Lowercase ``name`` and map known aliases (``Python``/``py`` → ``python``)."""
    key = name.strip().lower()
    return _LANGUAGE_ALIASES.get(key, key)


def content_hash(language: str, pre_code: str, post_code: str) -> str:
    """sha256 over language and trimmed pre/post code (the edit itself, not its wording)."""
    h = hashlib.sha256()
    for part in (normalize_language(language), pre_code.strip(), post_code.strip()):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class NormalizedRecord(BaseModel):
    """One instruction-driven edit: ``pre_code`` + ``instruction`` → ``post_code``.

    ``tests`` is a program that passes on ``post_code`` (HumanEvalFix, CanItEdit,
    the bug-fix generator); ``action`` is the ground-truth ast-grep action where
    one exists (synthetic codemods), as the mapping
    :func:`harness.data.code_edit.action.parse_action` accepts.  Build rows with
    :meth:`build` so the hash is computed; a stored hash that does not match the
    content is a validation error on field ``content_hash``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    language: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    pre_code: str = Field(min_length=1)
    post_code: str = Field(min_length=1)
    tests: str | None = None
    action: dict[str, Any] | None = None
    split: Split
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return normalize_language(value)

    @field_validator("instruction")
    @classmethod
    def _instruction(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instruction is blank; every edit needs an instruction")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NormalizedRecord:
        if self.pre_code.strip() == self.post_code.strip():
            raise ValueError("post_code equals pre_code: a record must change the code")
        expected = content_hash(self.language, self.pre_code, self.post_code)
        if self.content_hash != expected:
            raise ValueError(
                f"content_hash {self.content_hash[:12]}… does not match the content "
                f"({expected[:12]}…); rebuild the row with NormalizedRecord.build"
            )
        return self

    @classmethod
    def build(cls, **fields: Any) -> NormalizedRecord:
        """Validate ``fields`` after computing ``content_hash`` from them."""
        lang = str(fields.get("language", ""))
        pre, post = str(fields.get("pre_code", "")), str(fields.get("post_code", ""))
        return cls.model_validate({**fields, "content_hash": content_hash(lang, pre, post)})


class DatasetMetadata(BaseModel):
    """What a processed data directory holds and how it was made (written as metadata.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    generator: str = Field(min_length=1)  # module (and version) that produced the rows
    seed: int | None = None
    sources: dict[str, str] = Field(default_factory=dict)  # source → where it came from
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # split → source → n
    languages: dict[str, int] = Field(default_factory=dict)
    total_bytes: int = Field(default=0, ge=0)
    records_digest: str = ""  # sha256 over the sorted content hashes
    near_duplicate_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
