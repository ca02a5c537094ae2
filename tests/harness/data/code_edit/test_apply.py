"""apply_action runs the real ast-grep binary; every generated codemod row reproduces itself."""

from __future__ import annotations

import pytest

from harness.data.code_edit.apply import ApplyError, apply_action

CODE = "def f(xs):\n    if len(xs) == 0:\n        return None\n    return xs[0]\n"
RULE = {"language": "python", "rule": {"pattern": "len($X) == 0"}, "fix": "not $X"}


def test_applies_rule_and_cli_forms() -> None:
    expected = CODE.replace("len(xs) == 0", "not xs")
    assert apply_action(RULE, CODE) == expected
    cli = {"cli": "ast-grep run -p 'len($X) == 0' -r 'not $X' -l python"}
    assert apply_action(cli, CODE) == expected


def test_no_match_leaves_code_unchanged() -> None:
    rule = {**RULE, "rule": {"pattern": "nothing_here($A)"}, "fix": "other($A)"}
    assert apply_action(rule, CODE) == CODE


def test_fix_using_an_unbound_metavariable_is_rejected_by_the_binary() -> None:
    with pytest.raises(ApplyError, match="Undefined meta var"):
        apply_action({**RULE, "fix": "not $Y"}, CODE)


def test_rule_the_binary_rejects_is_an_apply_error() -> None:
    bad = {**RULE, "rule": {"kind": "no_such_node_kind"}}
    with pytest.raises(ApplyError, match="rejected"):
        apply_action(bad, CODE)
