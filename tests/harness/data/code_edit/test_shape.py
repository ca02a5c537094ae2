"""Edit shapes from the pre-code text, and the train/held-out shape-parity check."""

from __future__ import annotations

from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.code_edit.shape import (
    NO_RULE,
    Cell,
    CodeShape,
    code_shape,
    record_cell,
    shape_parity,
)

FUNC = "def f(a, b):\n    return a + b\n"
METHOD = "def area(self, k):\n    return self.w * k\n"
ACTION = {"id": "keys-to-list", "language": "python", "rule": {"pattern": "$D.keys()"}}


def rec(
    i: str, split: Split, pre: str, *, source: str = "s", action: bool = False
) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=i,
        source=source,
        language="python",
        instruction="edit",
        pre_code=pre,
        post_code=pre + f"# {i}\n",
        action={**ACTION, "fix": "list($D)"} if action else None,
        split=split,
    )


def test_code_shape_reads_the_first_parameter_of_a_lone_def() -> None:
    assert code_shape(FUNC) is CodeShape.FUNCTION
    assert code_shape(METHOD) is CodeShape.METHOD
    assert code_shape("def make(cls, /, x):\n    return cls(x)\n") is CodeShape.METHOD
    assert code_shape("async def get(self):\n    return 1\n") is CodeShape.METHOD
    assert code_shape("def nothing():\n    pass\n") is CodeShape.FUNCTION
    assert code_shape("def g(x, self):\n    return x\n") is CodeShape.FUNCTION
    assert code_shape(FUNC + "\n" + FUNC) is CodeShape.OTHER  # a module, not one def
    assert code_shape("class C:\n    pass\n") is CodeShape.OTHER
    assert code_shape("def broken(:\n") is CodeShape.OTHER


def test_record_cell_is_source_rule_and_shape() -> None:
    assert record_cell(rec("a", Split.TRAIN, METHOD, action=True)) == Cell(
        "s", "keys-to-list", "method"
    )
    assert record_cell(rec("b", Split.TEST, FUNC)) == Cell("s", NO_RULE, "function")


def test_a_heldout_method_cell_without_a_train_method_is_a_gap() -> None:
    rows = [
        rec("t1", Split.TRAIN, FUNC, action=True),
        rec("d1", Split.DEV, METHOD, action=True),
        rec("x1", Split.TEST, FUNC, action=True),
    ]
    report = shape_parity(rows)
    assert report.gaps == [Cell("s", "keys-to-list", "method")]
    assert report.heldout_cells() == [
        Cell("s", "keys-to-list", "function"),
        Cell("s", "keys-to-list", "method"),
    ]
    shown = report.as_dict()
    assert shown["shape_gaps"] == ["s/keys-to-list/method"]
    assert shown["cells"]["s/keys-to-list/method"] == {"train": 0, "dev": 1, "test": 0}  # type: ignore[index]
    assert report.shape_totals() == {
        "train": {"function": 1},
        "dev": {"method": 1},
        "test": {"function": 1},
    }


def test_parity_holds_when_train_has_every_heldout_cell() -> None:
    rows = [
        rec("t1", Split.TRAIN, FUNC, action=True),
        rec("t2", Split.TRAIN, METHOD.replace("area", "size"), action=True),
        rec("x1", Split.TEST, METHOD, action=True),
    ]
    assert shape_parity(rows).gaps == []


def test_a_test_only_source_is_counted_but_not_checked() -> None:
    """A benchmark ingested test-only (CanItEdit) is held out by design, not a gap."""
    rows = [
        rec("t1", Split.TRAIN, FUNC),
        rec("x1", Split.TEST, METHOD, source="canitedit"),
    ]
    report = shape_parity(rows)
    assert report.gaps == [] and report.checked_sources == ["s"]
    assert report.counts["test"] == {Cell("canitedit", NO_RULE, "method"): 1}
