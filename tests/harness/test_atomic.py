"""Atomic writes leave the old content or the new one, never a torn file or a stray temp."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.atomic import (
    atomic_dir,
    atomic_open,
    atomic_symlink,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
)
from harness.errors import AtomicWriteError, EvidenceError


def test_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.txt"
    atomic_write_text(path, "old " * 1000)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]


def test_failure_inside_block_keeps_old_content(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomic_write_json(path, {"x": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write('{"x": ')
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_jsonl_and_perms(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    atomic_write_jsonl(path, [{"b": 1, "a": 2}, '{"raw": true}'])
    assert path.read_text().splitlines() == ['{"a": 2, "b": 1}', '{"raw": true}']
    atomic_write_text(path, "x", perms=0o644)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_unwritable_target_names_path_and_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AtomicWriteError, match="cannot write") as info:
        atomic_write_text(blocker / "x.txt", "text")
    assert isinstance(info.value, EvidenceError)  # callers catching evidence errors keep working
    assert str(blocker / "x.txt") in str(info.value)


def test_atomic_dir_publishes_whole_tree_and_replaces_older(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
        assert not out.exists()
    assert (out / "a").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a").write_text("broken")
        raise RuntimeError("training diverged")
    assert (out / "a").read_text() == "1"
    with atomic_dir(out) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_symlink_repoints(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    atomic_symlink(tmp_path / "latest", "r1")
    atomic_symlink(tmp_path / "latest", "r2")
    assert os.readlink(tmp_path / "latest") == "r2"
