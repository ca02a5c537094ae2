"""Published-format loaders on the shipped fixtures (fixtures/code_edit/)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from harness.data.code_edit.loaders import (
    LOADERS,
    hash_split,
    load_canitedit,
    load_commitpackft,
    load_editpackft,
    load_humanevalfix,
)
from harness.data.code_edit.schema import Split
from harness.errors import DataValidationError

FIX = Path(__file__).resolve().parents[4] / "fixtures" / "code_edit"


def test_commitpackft_maps_fields() -> None:
    rows = list(load_commitpackft(FIX / "commitpackft.jsonl"))
    assert len(rows) == 2
    r = rows[0]
    assert (r.source, r.language) == ("commitpackft", "python")
    assert r.instruction == "Use math.pi instead of a literal"
    assert "math.pi" in r.post_code and "3.14" in r.pre_code
    assert r.split is hash_split(r.content_hash)


def test_editpackft_prefers_instruction_over_message() -> None:
    (r,) = load_editpackft(FIX / "editpackft.jsonl")
    assert r.instruction == "Raise IndexError when popping an empty stack."


def test_canitedit_is_test_only_with_tests_and_both_instructions() -> None:
    (d,) = load_canitedit(FIX / "canitedit.jsonl")
    (lazy,) = load_canitedit(FIX / "canitedit.jsonl", lazy=True)
    assert d.split is Split.TEST and d.tests and "clamp" in d.tests
    assert (d.instruction, lazy.instruction) == ("Make clamp also cap x at hi.", "cap at hi too")


def test_humanevalfix_builds_runnable_pair_test_only() -> None:
    (r,) = load_humanevalfix(FIX / "humanevalfix.jsonl")
    assert r.split is Split.TEST
    namespace: dict[str, object] = {}
    exec(r.post_code + (r.tests or ""), namespace)  # canonical passes its test
    with pytest.raises(AssertionError):
        exec(r.pre_code + (r.tests or ""), {})  # the buggy one does not


def test_gzip_and_all_loaders_registered(tmp_path: Path) -> None:
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress((FIX / "commitpackft.jsonl").read_bytes()))
    assert len(list(load_commitpackft(gz))) == 2
    assert set(LOADERS) == {"commitpackft", "editpackft", "canitedit", "humanevalfix"}


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"old_contents": "a", "lang": "Python", "message": "m"}\n')
    with pytest.raises(DataValidationError, match=r"bad\.jsonl:1: field 'new_contents' is missing"):
        list(load_commitpackft(bad))


def test_hash_split_fractions() -> None:
    import hashlib

    splits = [hash_split(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(2000)]
    assert 150 < splits.count(Split.TEST) < 250 and 150 < splits.count(Split.DEV) < 250


def test_parquet_form(tmp_path: Path) -> None:
    import json

    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    rows = [json.loads(x) for x in (FIX / "canitedit.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("taxonomy")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    (r,) = load_canitedit(tmp_path / "c.parquet")
    assert r.source == "canitedit" and r.split is Split.TEST
