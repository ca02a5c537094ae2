"""Embedded code-edit generator: real ast-grep codemods, mutations, split and leakage."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.data.code_edit.action import parse_action
from harness.data.code_edit.leakage import check_leakage
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.store import read_processed
from trainers.code_edit.codemods import CODEMODS, apply_codemods, ast_grep_binary
from trainers.code_edit.generate import build_embedded, drop_leaking
from trainers.code_edit.heldout import Sources
from trainers.code_edit.mutations import candidates, mutate_functions

F1 = '''def mean(xs):
    """Average of xs."""
    if len(xs) == 0:
        return 0.0
    result = sum(xs)
    return result / len(xs)
'''
F2 = '''def show(name):
    """Print a name."""
    if isinstance(name, str):
        print(name)
    return name
'''
F3 = '''def last(items, n):
    """The last n items."""
    if n <= 0:
        return []
    return items[len(items) - n:]
'''
F4 = '''def ratio(part, whole):
    """Share of part in whole, printed and returned."""
    if len(whole) == 0:
        print(part)
    result = len(part)
    return result / len(whole)
'''


def _sources(train: list[str], heldout: list[str], corpus: list[str] | None = None) -> Sources:
    return Sources(
        train_functions=train,
        train_units=train,
        heldout_functions=heldout,
        heldout_units=heldout,
        pretrain_corpus=train if corpus is None else corpus,
    )


def test_binary_is_the_real_ast_grep() -> None:
    assert ast_grep_binary().is_file()


def test_codemods_apply_with_the_binary_and_keep_their_rule() -> None:
    pairs = apply_codemods([F1, F2])
    by = {(p.codemod.name, p.pre): p.post for p in pairs}
    assert "not xs" in by[("len-zero-to-not", F1)]
    assert "outcome = sum(xs)" in by[("rename-result", F1)]
    assert "return result / len(xs) if len(xs) else 0" in by[("guard-division", F1)]
    assert "logging.info('%s', name)" in by[("print-to-logging", F2)]
    assert "(str, bytes)" in by[("isinstance-str-bytes", F2)]
    for p in pairs:
        ast.parse(p.post)
        assert parse_action(p.codemod.action().rule_yaml()) == p.codemod.action()
    assert {c.name for c in CODEMODS} >= {p.codemod.name for p in pairs}


def test_mutations_change_one_token_and_parse() -> None:
    kinds = {m.kind for m in candidates(F3)}
    assert kinds == {"comparison_swap", "operator_swap", "off_by_one"}
    (pair,) = mutate_functions([F3], seed=1)
    ast.parse(pair.pre)
    assert pair.post == F3 and pair.pre != F3
    diff = [(a, b) for a, b in zip(pair.pre.splitlines(), F3.splitlines(), strict=True) if a != b]
    assert len(diff) == 1
    assert mutate_functions([F3], seed=1) == [pair]  # seeded


def test_drop_leaking_keeps_train_and_drops_later_split() -> None:
    def r(i: str, split: Split, pre: str) -> NormalizedRecord:
        return NormalizedRecord.build(
            id=i,
            source="s",
            language="python",
            instruction="x",
            pre_code=pre,
            post_code=pre + "# e\n",
            split=split,
        )

    built = drop_leaking([r("t", Split.TRAIN, F1), r("d", Split.TEST, F1), r("o", Split.DEV, F2)])
    assert built.dropped_leaking == ["d"]
    assert check_leakage(built.records).count == 0


def test_build_embedded_writes_valid_leak_free_splits(tmp_path: Path) -> None:
    meta, built = build_embedded(
        root=tmp_path, sources=_sources([F1, F2], [F3, F4]), doctest_modules=()
    )
    rows = read_processed(root=tmp_path)
    assert sorted(r.id for r in rows) == sorted(r.id for r in built.records)
    assert check_leakage(rows).count == 0
    assert {r.source for r in rows} == {"synthetic_codemod", "synthetic_bugfix"}
    assert all(r.action is not None for r in rows if r.source == "synthetic_codemod")
    assert sum(sum(v.values()) for v in meta.counts.values()) == len(rows)


def test_tested_bugs_fail_their_doctests_and_the_fix_passes() -> None:
    import subprocess
    import sys

    from trainers.code_edit.tested_bugs import tested_bugs

    bugs = tested_bugs(modules=("heapq",))
    assert bugs, "heapq.merge-style doctests should yield at least one verified bug"
    b = bugs[0]
    run = [sys.executable, "-I", "-c"]
    assert subprocess.run([*run, b.pair.post + b.tests], capture_output=True).returncode == 0
    assert subprocess.run([*run, b.pair.pre + b.tests], capture_output=True).returncode != 0


def test_every_codemod_row_reproduces_post_code_through_apply_action(tmp_path: Path) -> None:
    from harness.data.code_edit.apply import apply_action

    build_embedded(root=tmp_path, sources=_sources([F1, F2], [F3, F4]), doctest_modules=())
    rows = [r for r in read_processed(root=tmp_path) if r.action is not None]
    assert rows
    for r in rows:
        assert apply_action(r.action, r.pre_code) == r.post_code, r.id


def test_train_comes_from_the_pretraining_part_and_heldout_from_the_reserved_part(
    tmp_path: Path,
) -> None:
    _, built = build_embedded(
        root=tmp_path, sources=_sources([F1, F2], [F3, F4]), doctest_modules=()
    )
    for r in built.records:
        original = r.post_code if r.source == "synthetic_bugfix" else r.pre_code
        assert (original in (F1, F2)) == (r.split is Split.TRAIN), r.id
    assert {r.split for r in built.records} >= {Split.TRAIN}
    assert {r.split for r in built.records} - {Split.TRAIN}, "no held-out record at all"
    assert built.dropped_pretrain_overlap == []


def test_heldout_rows_sharing_code_with_the_pretraining_corpus_are_dropped(
    tmp_path: Path,
) -> None:
    """F4 is reserved here, but the corpus holds it: its held-out edits must not survive."""
    _, built = build_embedded(
        root=tmp_path, sources=_sources([F1, F2], [F3, F4], [F1, F2, F4]), doctest_modules=()
    )
    dropped = set(built.dropped_pretrain_overlap)
    assert dropped and not dropped & {r.id for r in built.records}
    assert all(
        F4 not in (r.pre_code, r.post_code) for r in built.records if r.split is not Split.TRAIN
    )


M1 = """def totals(self, key):
    if isinstance(key, str):
        print(key)
    result = self.table.keys()
    return result
"""
M2 = """def lookup(self, name):
    if isinstance(name, str):
        return self.cache.keys()
    return None
"""


def test_train_codemods_take_methods_like_the_heldout_ones(tmp_path: Path) -> None:
    """Train codemods come from the same population as held-out ones (methods included):
    every held-out (rule, shape) cell has train rows, and the real generator's train
    split has method-shaped rows for every rule it has held-out methods for."""
    from harness.data.code_edit.shape import CodeShape, code_shape, shape_parity

    src = Sources(
        train_functions=[F1, F2],
        train_units=[F1, F2, M1],
        heldout_functions=[F3],
        heldout_units=[F3, M2],
        pretrain_corpus=[F1, F2],
    )
    _, built = build_embedded(root=tmp_path, sources=src, doctest_modules=())
    train_methods = {
        r.action["id"]
        for r in built.records
        if r.split is Split.TRAIN and r.action and code_shape(r.pre_code) is CodeShape.METHOD
    }
    assert train_methods >= {"isinstance-str-bytes", "keys-to-list"}
    assert not any(r.source == "synthetic_bugfix" and r.pre_code == M1 for r in built.records)
    assert shape_parity(built.records).gaps == []
