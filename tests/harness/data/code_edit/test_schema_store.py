"""NormalizedRecord validation, processed-data round trip, stats and leakage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.data.code_edit.leakage import check_leakage
from harness.data.code_edit.schema import NormalizedRecord, Split, content_hash
from harness.data.code_edit.store import dataset_stats, read_processed, write_processed
from harness.errors import DataValidationError

PRE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
POST = PRE.replace("total", "acc")


def rec(
    i: str, split: Split, pre: str = PRE, post: str = POST, source: str = "s"
) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=i,
        source=source,
        language="Python",
        instruction="rename total to acc",
        pre_code=pre,
        post_code=post,
        split=split,
    )


def test_build_normalizes_language_and_hashes_content() -> None:
    r = rec("a", Split.TRAIN)
    assert r.language == "python"
    assert r.content_hash == content_hash("py", PRE + "\n", POST)  # alias + trimmed


def test_wrong_hash_and_no_op_edit_name_the_problem() -> None:
    good = rec("a", Split.TRAIN).model_dump()
    with pytest.raises(ValidationError, match="content_hash"):
        NormalizedRecord.model_validate({**good, "content_hash": "0" * 64})
    with pytest.raises(ValidationError, match="post_code equals pre_code"):
        rec("b", Split.TRAIN, post=PRE)
    with pytest.raises(ValidationError, match="extra"):
        NormalizedRecord.model_validate({**good, "surprise": 1})


def test_round_trip_and_stats(tmp_path: Path) -> None:
    rows = [rec("a", Split.TRAIN), rec("b", Split.TEST, post=POST + "# x\n", source="t")]
    meta = write_processed(rows, root=tmp_path, name="demo", generator="test")
    assert (tmp_path / "train" / "s.jsonl").is_file()
    assert meta.counts == {"train": {"s": 1}, "dev": {}, "test": {"t": 1}}
    assert meta.languages == {"python": 2}
    assert read_processed(root=tmp_path) == rows
    stats = dataset_stats(rows)
    assert stats.split_total(Split.TRAIN) == 1
    expected = sum(len(t.encode()) for r in rows for t in (r.instruction, r.pre_code, r.post_code))
    assert stats.total_bytes == expected


def test_bad_row_error_names_file_line_and_field(tmp_path: Path) -> None:
    write_processed([rec("a", Split.DEV)], root=tmp_path, name="d", generator="t")
    path = tmp_path / "dev" / "s.jsonl"
    row = json.loads(path.read_text())
    row["instruction"] = ""
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    with pytest.raises(DataValidationError, match=r"s\.jsonl:2: field 'instruction'"):
        read_processed(root=tmp_path)


def test_row_under_wrong_split_dir_is_an_error(tmp_path: Path) -> None:
    write_processed([rec("a", Split.DEV)], root=tmp_path, name="d", generator="t")
    (tmp_path / "dev" / "s.jsonl").rename(tmp_path / "train.jsonl")
    (tmp_path / "train").mkdir()
    (tmp_path / "train.jsonl").rename(tmp_path / "train" / "s.jsonl")
    with pytest.raises(DataValidationError, match="field 'split'='dev'"):
        read_processed(root=tmp_path)


def test_leakage_exact_near_and_clean() -> None:
    a = rec("a", Split.TRAIN)
    exact = rec("b", Split.TEST)
    near = rec("c", Split.DEV, pre=PRE.replace("xs", "ys"), post=POST.replace("xs", "ys"))
    far = rec("d", Split.TEST, pre="class A:\n    pass\n", post="class B:\n    pass\n")
    report = check_leakage([a, exact, near, far])
    kinds = sorted((p.kind, p.b_id) for p in report.pairs)
    assert ("exact", "b") in kinds
    assert any(k == "near" and "c" in (p.a_id, p.b_id) for p in report.pairs for k in [p.kind])
    assert all("d" not in (p.a_id, p.b_id) for p in report.pairs)
    same_split = check_leakage([a, rec("e", Split.TRAIN)])
    assert same_split.count == 0
