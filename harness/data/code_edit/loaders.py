"""Loaders for the published code-edit sources, in their published row shapes.

None of these sets can be downloaded here; a user who has one on disk points a
loader at the file (``.jsonl``, ``.jsonl.gz`` or ``.parquet``, the forms they are
published in).  Each loader maps the source's fields to
:class:`NormalizedRecord` and says which field was missing or wrong, with file
and row number.

Splits: CommitPackFT and EditPackFT are training corpora, split by a hash of the
content (so a re-run puts every row in the same split, and identical edits land
together).  CanItEdit and HumanEvalFix are benchmarks: every row goes to
``test`` and never to train/dev.  HumanEvalFix is built on HumanEval, the
codegen phase's benchmark, which is one more reason it is eval-only.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.data.code_edit.schema import NormalizedRecord, Split, content_hash
from harness.data.schemas import validation_message
from harness.errors import DataValidationError

__all__ = [
    "LOADERS",
    "hash_split",
    "load_canitedit",
    "load_commitpackft",
    "load_editpackft",
    "load_humanevalfix",
    "read_rows",
]

_FIX = "check the file is the published format of this source (field names as published)"


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) from ``.jsonl``/``.jsonl.gz``/``.parquet``; bad JSON names the line."""
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file; point the loader at the source file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # 'train' extra (datasets)

        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, row
        return
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}); one JSON object per line"
                ) from exc
            if not isinstance(row, dict):
                raise DataValidationError(f"{path}:{lineno}: row is not a JSON object")
            yield lineno, row


def hash_split(digest: str, *, dev: float = 0.1, test: float = 0.1) -> Split:
    """Deterministic split from a content hash: same edit, same split, on every run."""
    u = int(digest[:8], 16) / 0x1_0000_0000
    if u < test:
        return Split.TEST
    if u < test + dev:
        return Split.DEV
    return Split.TRAIN


def _need(row: Mapping[str, Any], field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str):
        shown = "missing" if value is None else f"a {type(value).__name__}"
        raise DataValidationError(f"{where}: field '{field}' is {shown}, expected a string; {_FIX}")
    return value


def _build(where: str, **fields: Any) -> NormalizedRecord:
    try:
        return NormalizedRecord.build(**fields)
    except ValidationError as exc:
        raise DataValidationError(validation_message(where, exc, fix=_FIX)) from exc


def _commit_rows(path: Path, source: str, instruction_field: str) -> Iterator[NormalizedRecord]:
    for n, row in read_rows(path):
        where = f"{path}:{n}"
        pre, post = _need(row, "old_contents", where), _need(row, "new_contents", where)
        lang = _need(row, "lang", where)
        instruction = row.get(instruction_field) or _need(row, "message", where)
        digest = content_hash(lang, pre, post)
        yield _build(
            where,
            id=f"{source}/{row.get('commit', n)}/{row.get('new_file', '')}",
            source=source,
            language=lang,
            instruction=str(instruction).strip(),
            pre_code=pre,
            post_code=post,
            split=hash_split(digest),
        )


def load_commitpackft(path: Path) -> Iterator[NormalizedRecord]:
    """CommitPackFT rows (commit, old_file, new_file, old_contents, new_contents, message…)."""
    return _commit_rows(path, "commitpackft", "message")


def load_editpackft(path: Path) -> Iterator[NormalizedRecord]:
    """EditPackFT rows: CommitPackFT's shape plus ``instruction`` (preferred over ``message``)."""
    return _commit_rows(path, "editpackft", "instruction")


def load_canitedit(path: Path, *, lazy: bool = False) -> Iterator[NormalizedRecord]:
    """CanItEdit rows (id, before, after, tests, instruction_descriptive / instruction_lazy)."""
    field = "instruction_lazy" if lazy else "instruction_descriptive"
    for n, row in read_rows(path):
        where = f"{path}:{n}"
        yield _build(
            where,
            id=f"canitedit/{row.get('id', n)}/{'lazy' if lazy else 'descriptive'}",
            source="canitedit",
            language="python",
            instruction=_need(row, field, where),
            pre_code=_need(row, "before", where),
            post_code=_need(row, "after", where),
            tests=_need(row, "tests", where),
            split=Split.TEST,
        )


def load_humanevalfix(path: Path) -> Iterator[NormalizedRecord]:
    """HumanEvalFix rows (task_id, declaration, buggy_solution, canonical_solution, test…)."""
    for n, row in read_rows(path):
        where = f"{path}:{n}"
        decl = _need(row, "declaration", where)
        entry = _need(row, "entry_point", where)
        test = _need(row, "test", where)
        yield _build(
            where,
            id=f"humanevalfix/{_need(row, 'task_id', where)}",
            source="humanevalfix",
            language="python",
            instruction=str(row.get("instruction") or f"Fix bugs in {entry}."),
            pre_code=decl + _need(row, "buggy_solution", where),
            post_code=decl + _need(row, "canonical_solution", where),
            tests=f"{test}\ncheck({entry})\n",
            split=Split.TEST,
        )


#: source name → loader (the CLI and docs list these)
LOADERS: dict[str, Callable[[Path], Iterator[NormalizedRecord]]] = {
    "commitpackft": load_commitpackft,
    "editpackft": load_editpackft,
    "canitedit": load_canitedit,
    "humanevalfix": load_humanevalfix,
}
