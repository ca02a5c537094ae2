"""Program traces re-derive every answer; user JSONL errors name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.arithmetic import ArithmeticItem, make_splits
from harness.errors import DataValidationError
from trainers.quiet_star.tokens import pieces
from trainers.quiet_star.traces import filler_trace, load_traces, program_trace, well_formed


def test_every_generated_item_has_a_trace_ending_in_its_answer() -> None:
    items = make_splits({"train": 400}, difficulties=(1, 2, 3, 4))["train"]
    for it in items:
        t = program_trace(it)
        assert t is not None
        assert t.thought.split()[-1] == it.answer
        assert well_formed(pieces(t.thought))


def test_trace_shape() -> None:
    it = ArithmeticItem(
        "Ava has 12 apples. Then Ava buys 5 more apples. Then Ava loses 3 apples. "
        "How many apples does Ava have now?",
        "14",
    )
    assert program_trace(it).thought == "[extract] 12 [add] 5 17 [subtract] 3 14"  # type: ignore[union-attr]


def test_trace_width_pads_every_number_to_aligned_digits() -> None:
    it = ArithmeticItem(
        "Ava has 12 apples. Then Ava buys 5 more apples. Then Ava loses 3 apples. "
        "How many apples does Ava have now?",
        "14",
    )
    t = program_trace(it, width=3)
    assert t is not None and t.thought == "[extract] 012 [add] 005 017 [subtract] 003 014"
    # least-significant digit first: the padding zeros come last inside each number
    assert pieces(t.thought)[1:6] == ["<n>", "2", "1", "0", "</n>"]
    assert well_formed(pieces(t.thought))
    big = ArithmeticItem("Bo has 1234 cards. Then Bo finds 1 more cards. How many?", "1235")
    assert program_trace(big, width=3).thought == "[extract] 1234 [add] 001 1235"  # type: ignore[union-attr]


def test_foreign_text_has_no_program_trace() -> None:
    assert program_trace(ArithmeticItem("What is 2 plus 2?", "4")) is None


def test_filler_trace_is_the_same_for_every_item() -> None:
    a = filler_trace(ArithmeticItem("q1", "1"), length=8)
    b = filler_trace(ArithmeticItem("q2", "2"), length=8)
    assert a.thought == b.thought == " ".join(["."] * 8)
    assert not well_formed(pieces(a.thought))


@pytest.mark.parametrize(
    ("toks", "ok"),
    [
        (["[add]", "<n>", "5", "</n>"], True),
        (["<n>", "5", "</n>"], False),  # no strategy token
        (["[add]", "<n>", "</n>"], False),  # empty number
        (["[add]", "<n>", "5"], False),  # unclosed number
        (["[add]", "<n>", "apples", "</n>"], False),
        (["[add]", "[bogus]"], False),
    ],
)
def test_well_formed(toks: list[str], ok: bool) -> None:
    assert well_formed(toks) is ok


def test_user_traces_load_and_errors_name_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "t.jsonl"
    good.write_text(
        '{"question": "Bo has 2 cards. Then Bo finds 3 more cards.", "answer": 5, '
        '"thought": "[extract] 2 [add] 3 5"}\n\n',
        encoding="utf-8",
    )
    [t] = load_traces(good)
    assert t.item.answer == "5" and t.thought.startswith("[extract]")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"question": "q", "answer": "1", "thought": "[think] 1"}\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"b.jsonl:1: field 'thought'"):
        load_traces(bad)
    neg = tmp_path / "n.jsonl"
    neg.write_text('{"question": "q", "answer": "-3", "thought": "[add] 1"}\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match="field 'answer'"):
        load_traces(neg)
    with pytest.raises(DataValidationError, match="no such file"):
        load_traces(tmp_path / "missing.jsonl")
