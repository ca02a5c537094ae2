"""The clean SRL dataset as the trainer reads it: rows, a digest of the bytes, strict errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.data.code_edit.schema import Split
from harness.data.code_edit.trajectory import SRLStep, load_srl_dataset
from harness.errors import DataValidationError

ACTION = "fix: $A + $B\nid: r\nlanguage: python\nrule:\n  pattern: $A - $B\n"


def _step(n: int, split: Split = Split.TRAIN, source: str = "src-a") -> SRLStep:
    return SRLStep(
        id=f"t/r{n}",
        record_id=f"r{n}",
        source=source,
        split=split,
        teacher="program:codemod",
        language="python",
        instruction="fix the sum",
        pre_code=f"def add{n}(a, b):\n    return a - b\n",
        action=ACTION,
        verified="matches_post_code",
    )


def _write(root: Path, name: str, steps: list[SRLStep]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text("".join(s.model_dump_json() + "\n" for s in steps), encoding="utf-8")
    return path


def test_reads_rows_digest_and_stats(tmp_path: Path) -> None:
    steps = [_step(0), _step(1, source="src-b"), _step(2)]
    path = _write(tmp_path, "train.jsonl", steps)
    (tmp_path / "stats.json").write_text(json.dumps({"kept": 3}), encoding="utf-8")
    data = load_srl_dataset(tmp_path)
    assert data.steps == tuple(steps) and data.split is Split.TRAIN
    assert data.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.stats == {"kept": 3}
    described = data.describe()
    assert described["rows"] == 3 and described["digest"] == data.digest
    assert described["rows_by_source"] == {"src-a": 2, "src-b": 1}
    assert described["path"] == str(path)


def test_digest_follows_content_and_order(tmp_path: Path) -> None:
    a = load_srl_dataset(_write(tmp_path / "a", "train.jsonl", [_step(0), _step(1)]).parent)
    b = load_srl_dataset(_write(tmp_path / "b", "train.jsonl", [_step(1), _step(0)]).parent)
    c = load_srl_dataset(_write(tmp_path / "c", "train.jsonl", [_step(0), _step(1)]).parent)
    assert a.digest != b.digest  # order changes what GRPO sees, so it is a different dataset
    assert a.digest == c.digest


def test_dev_split_reads_dev_file(tmp_path: Path) -> None:
    _write(tmp_path, "dev.jsonl", [_step(5, Split.DEV)])
    data = load_srl_dataset(tmp_path, Split.DEV)
    assert [s.id for s in data.steps] == ["t/r5"] and data.stats == {}


def test_missing_split_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"train\.jsonl.*harness data code-edit filter"):
        load_srl_dataset(tmp_path)


def test_row_filed_under_another_split_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "train.jsonl", [_step(0), _step(1, Split.DEV)])
    with pytest.raises(DataValidationError, match=r"row 't/r1': field 'split' = 'dev'"):
        load_srl_dataset(tmp_path)


def test_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "train.jsonl", [_step(0)])
    row = json.loads(path.read_text(encoding="utf-8"))
    del row["action"]
    path.write_text(path.read_text(encoding="utf-8") + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"train\.jsonl:2: field 'action'"):
        load_srl_dataset(tmp_path)
