"""Code-edit data-gate outcomes read from a processed directory."""

from __future__ import annotations

from pathlib import Path

from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.store import write_processed
from harness.evaluators.code_edit import (
    leakage_outcomes,
    load_rows,
    split_count_outcomes,
    violation_outcomes,
)

PRE = "def f(a, b):\n    return a + b\n"


def rec(i: str, split: Split, post: str) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=i,
        source="s",
        language="python",
        instruction="edit",
        pre_code=PRE,
        post_code=post,
        split=split,
    )


def test_clean_data_gives_zero_sentinels_and_counts(tmp_path: Path) -> None:
    rows = [rec("a", Split.TRAIN, PRE.replace("+", "-")), rec("b", Split.TEST, "x = 1\n")]
    write_processed(rows, root=tmp_path, name="t", generator="t")
    (v,) = violation_outcomes(tmp_path)
    assert v.value == 0 and v.raw["rows_checked"] == 2
    loaded = load_rows(tmp_path)
    (leak,) = leakage_outcomes(loaded)
    assert leak.value == 0 and leak.raw["pairs_compared"] == 1
    assert [o.item_id for o in split_count_outcomes(loaded, Split.TRAIN)] == ["a"]
    assert split_count_outcomes(loaded, Split.DEV) == []


def test_leak_and_violation_are_one_outcome_each(tmp_path: Path) -> None:
    post = PRE.replace("+", "-")
    rows = [rec("a", Split.TRAIN, post), rec("b", Split.DEV, post)]
    out = leakage_outcomes(rows)
    assert [(o.value, o.raw["kind"]) for o in out] == [(1.0, "exact")]
    write_processed(rows, root=tmp_path, name="t", generator="t")
    path = tmp_path / "dev" / "s.jsonl"
    path.write_text(path.read_text() + '{"id": "x"}\n')
    problems = violation_outcomes(tmp_path)
    assert problems and all(o.value == 1.0 for o in problems)
    assert sum(o.value for o in problems) == len(problems)


def test_action_outcomes_reproduce_mismatch_and_reject() -> None:
    from harness.evaluators.code_edit import action_outcomes

    pre = "def f(xs):\n    return len(xs) == 0\n"
    action = {"language": "python", "rule": {"pattern": "len($X) == 0"}, "fix": "not $X"}

    def row(i: str, post: str, act: dict[str, object]) -> NormalizedRecord:
        return NormalizedRecord.build(
            id=i,
            source="s",
            language="python",
            instruction="e",
            pre_code=pre,
            post_code=post,
            split=Split.TRAIN,
            action=act,
        )

    good = row("good", "def f(xs):\n    return not xs\n", action)
    wrong = row("wrong", "def f(xs):\n    return xs == []\n", action)
    rejected = row("rejected", "def f(xs):\n    return not xs\n", {**action, "fix": "not $Y"})
    out = {o.item_id: o for o in action_outcomes([good, wrong, rejected])}
    assert (out["good"].value, out["wrong"].value, out["rejected"].value) == (0.0, 1.0, 1.0)
    assert "Undefined meta var" in out["rejected"].raw["error"]


def test_shape_gap_outcomes_one_per_heldout_cell() -> None:
    from harness.evaluators.code_edit import shape_gap_outcomes

    method = "def f(self, b):\n    return self.a + b\n"
    rows = [
        rec("a", Split.TRAIN, PRE.replace("+", "-")),
        rec("b", Split.TEST, "x = 1\n"),
        NormalizedRecord.build(
            id="m",
            source="s",
            language="python",
            instruction="edit",
            pre_code=method,
            post_code=method.replace("+", "-"),
            split=Split.DEV,
        ),
    ]
    outcomes, report = shape_gap_outcomes(rows)
    assert [(o.item_id, o.value) for o in outcomes] == [
        ("s/-/function", 0.0),
        ("s/-/method", 1.0),
    ]
    assert outcomes[1].raw == {"train": 0, "dev": 1, "test": 0}
    assert [c.label() for c in report.gaps] == ["s/-/method"]
    (sentinel,) = shape_gap_outcomes([rows[0]])[0]
    assert sentinel.value == 0.0 and sentinel.item_id == "no_heldout_cells"
