"""The baking probe's error breakdown names where a wrong thought first departs."""

from __future__ import annotations

from typing import Any

import pytest

from harness.data.arithmetic import ArithmeticItem
from trainers.quiet_star.bake_probe import error_kinds, main
from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.traces import program_trace

_Q = (
    "Ava has 12 apples. Then Ava buys 5 more apples. Then Ava loses 3 apples. "
    "How many apples does Ava have now?"
)


@pytest.mark.parametrize(
    ("thought", "kind"),
    [
        ("[extract] 12 [add] 5 17 [subtract] 3 14", "exact"),
        ("[extract] 13 [add] 5 18 [subtract] 3 15", "extract"),
        ("[extract] 12 [add] 6 18 [subtract] 3 15", "operand"),
        ("[extract] 12 [add] 5 16 [subtract] 3 13", "value"),
        ("[extract] 12 [subtract] 5 7", "operation"),
        ("[extract] 12 [add] 5 17", "length"),
    ],
)
def test_error_kinds(tokenised: Any, thought: str, kind: str) -> None:
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    trace = program_trace(ArithmeticItem(_Q, "14"))
    assert trace is not None
    row = {"thought": " ".join(vocab.tokens(vocab.thought(thought)))}
    assert error_kinds(vocab, [trace], [row]) == {kind: 1}


def test_probe_refuses_held_out() -> None:
    with pytest.raises(SystemExit):
        main(["--set", 'eval_split="held_out"'])
