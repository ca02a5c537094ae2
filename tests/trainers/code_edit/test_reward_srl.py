"""reward_srl: each branch against a hand-computed value."""

from __future__ import annotations

import pytest

from harness.data.code_edit.action import parse_action
from trainers.code_edit import reward_srl as mod
from trainers.code_edit.reward_srl import field_score, reward_srl, string_score

TEACHER = {"language": "python", "rule": {"pattern": "foo($A)"}, "fix": "bar($A)"}
# canonical YAML of TEACHER: "fix: bar($A)\nid: edit\nlanguage: python\nrule:\n  pattern: foo($A)\n"
# = 13 + 9 + 17 + 6 + 19 = 64 characters.


def test_identical_action_scores_one() -> None:
    assert reward_srl(TEACHER, dict(TEACHER)) == 1.0


def test_invalid_action_scores_minus_point_two() -> None:
    assert reward_srl(TEACHER, "language: python\nrule: {pattern: x}\n") == -0.2
    assert reward_srl(TEACHER, "not: [valid") == -0.2


def test_one_field_wrong_hand_computed() -> None:
    student = {**TEACHER, "fix": "baz($A)"}
    # S_field: paths language, rule.pattern, fix -> 2 of 3 agree.
    # S_str: same 64-character YAML but one character differs -> 2*63/(64+64) = 63/64.
    t, s = parse_action(TEACHER), parse_action(student)
    assert len(t.rule_yaml()) == 64
    assert field_score(t, s) == pytest.approx(2 / 3)
    assert string_score(t, s) == pytest.approx(63 / 64)
    assert reward_srl(TEACHER, student) == pytest.approx(0.7 * 2 / 3 + 0.3 * 63 / 64)  # 0.76198


def test_extra_rule_path_counts_against_the_union() -> None:
    student = {**TEACHER, "rule": {"pattern": "foo($A)", "inside": {"kind": "call"}}}
    # union {language, fix, rule.pattern, rule.inside.kind}; 3 agree -> 0.75
    assert field_score(parse_action(TEACHER), parse_action(student)) == 0.75


def test_id_is_a_label_not_a_field() -> None:
    assert reward_srl(TEACHER, {**TEACHER, "id": "other"}) < 1.0  # S_str sees the id
    assert field_score(parse_action(TEACHER), parse_action({**TEACHER, "id": "other"})) == 1.0


def test_clip_to_upper_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "W_FIELD", 2.0)  # 2.0*1 + 0.3*1 = 2.3 -> clipped to 1.0
    assert reward_srl(TEACHER, TEACHER) == 1.0


def test_clip_to_lower_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "W_FIELD", -1.0)  # -1*(2/3) + 0.3*(63/64) = -0.3714 -> -0.2
    assert reward_srl(TEACHER, {**TEACHER, "fix": "baz($A)"}) == -0.2


def test_teacher_must_parse() -> None:
    from harness.data.code_edit.action import ActionError

    with pytest.raises(ActionError):
        reward_srl({"rule": {"pattern": "x"}}, TEACHER)
