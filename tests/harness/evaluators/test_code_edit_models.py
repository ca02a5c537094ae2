"""Outcomes of the trained code-edit subjects: exact match, chrF difference, action
success, training curves (the validator is a stand-in here, in tests only)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.errors import HarnessError
from harness.evaluators.code_edit_models import (
    action_success_outcomes,
    chrf,
    chrf_difference_outcomes,
    curve_outcomes,
    edit_requests,
    exact_match_outcomes,
)


def _rec(i: int) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=f"r{i}",
        source="unit",
        language="python",
        instruction="Fix the bug.",
        pre_code=f"def f():\n    return {i} - 1\n",
        post_code=f"def f():\n    return {i} + 1\n",
        split=Split.TEST,
    )


def test_exact_match_ignores_trailing_whitespace_only() -> None:
    recs = [_rec(1), _rec(2), _rec(3)]
    texts = {
        "r1": recs[0].post_code.rstrip(),
        "r2": recs[1].pre_code,
        "r3": " " + recs[2].post_code,
    }
    assert [o.value for o in exact_match_outcomes(recs, texts)] == [1.0, 0.0, 0.0]


def test_missing_completion_is_an_error() -> None:
    with pytest.raises(HarnessError, match="no completion for 1 record"):
        exact_match_outcomes([_rec(1)], {})


def test_chrf_scale_and_difference() -> None:
    assert chrf("def f(): pass", "def f(): pass") == pytest.approx(1.0)
    assert chrf("", "def f(): pass") == 0.0
    rec = _rec(1)
    out = chrf_difference_outcomes([rec], {"r1": rec.post_code}, {"r1": ""})
    assert out[0].value == pytest.approx(1.0)
    assert 0.0 < out[0].raw["chrf_copy"] < 1.0  # pre_code is similar, not equal


def test_requests_are_greedy_chat_in_the_training_prompt_shape() -> None:
    (req,) = edit_requests([_rec(1)], Target.POST_CODE, max_tokens=32)
    assert req.request_id == "r1" and req.sampling.temperature == 0.0
    assert req.messages is not None and [m.role for m in req.messages] == ["system", "user"]
    assert _rec(1).pre_code in req.messages[1].content


@dataclass
class _StandIn:
    """Stand-in for code_edit_actions.ActionOutcome (tests only)."""

    item_id: str
    parsed: bool
    success: bool
    reason: str
    applied_code: str | None = None


def test_action_success_outcomes() -> None:
    res = [_StandIn("a", True, True, "ok"), _StandIn("b", False, False, "parse: bad yaml")]
    out = action_success_outcomes(res)
    assert [(o.item_id, o.value, o.raw["parsed"]) for o in out] == [
        ("a", 1.0, True),
        ("b", 0.0, False),
    ]


def test_curve_outcomes_keep_order() -> None:
    out = curve_outcomes([0.1, 0.2, 0.3], name="r")
    assert [o.item_id for o in out] == ["step/00001", "step/00002", "step/00003"]
    with pytest.raises(HarnessError, match="empty"):
        curve_outcomes([], name="r")
