"""The ast-grep action parser: both forms normalise to one action; errors name the field."""

from __future__ import annotations

import pytest

from harness.data.code_edit.action import ActionError, parse_action

RULE = """
id: to-bar
language: Python
rule:
  pattern: foo($A)
fix: bar($A)
"""


def test_yaml_and_cli_forms_normalise_to_the_same_rule() -> None:
    a = parse_action(RULE)
    b = parse_action({"cli": "ast-grep run -p 'foo($A)' -r 'bar($A)' -l python"})
    assert a.language == "python" and a.rule == {"pattern": "foo($A)"}
    assert (a.rule, a.fix, a.language) == (b.rule, b.fix, b.language)
    assert parse_action(a.rule_yaml()) == a  # canonical YAML round-trips
    assert parse_action({"cli": a.cli() or ""}).rule == a.rule


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("language: python\nrule: {pattern: x}\n", "field 'fix' is missing"),
        ({"language": "python", "rule": {"patern": "x"}, "fix": "y"}, "field 'rule'"),
        ({"language": "klingon", "rule": {"pattern": "x"}, "fix": "y"}, "field 'language'"),
        ({"language": "python", "rule": {}, "fix": "y"}, "field 'rule'"),
        ({"language": "python", "rule": {"pattern": "x"}, "fix": "y", "x": 1}, "field 'x'"),
        ("rule: [unclosed", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ({"cli": "rm -rf /"}, "field 'cli': must start with 'ast-grep run'"),
        ({"cli": "sg run -p x -r y -l python --update-all"}, "unsupported argument"),
        ({"cli": "sg run -p x -l python"}, "missing the fix option"),
    ],
)
def test_errors_name_the_field(action: object, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        parse_action(action)  # type: ignore[arg-type]


def test_cli_is_none_for_relational_rules() -> None:
    a = parse_action(
        {"language": "python", "rule": {"pattern": "x", "inside": {"kind": "call"}}, "fix": "y"}
    )
    assert a.cli() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [1]\nb: *x\n", "aliases"),  # alias bombs never expand
        ("language: python\nrule: {pattern: x}\nfix: " + "y" * 20_000, "above the limit"),
        ("[" * 5000 + "]" * 5000, "action:"),  # deep nesting: a typed error, not RecursionError
        ("fix: !!python/object:os.system x\n", "not valid YAML"),
        # scalars PyYAML's resolver matches but cannot build: plain ValueError/AttributeError
        # inside the loader, which escaped parse_action and stopped the whole batch
        ("language: python\nrule: {pattern: x}\nfix: " + "9" * 5000, "cannot be read"),
        ("language: python\nrule: {pattern: x}\nfix: 2001-13-01\n", "cannot be read"),
        ("language: python\nrule: {regex: 2001-02-30}\nfix: x\n", "cannot be read"),
        ("fix: !!timestamp abc\n", "cannot be read"),
        ("fix: !!int 0b\n", "cannot be read"),
        ("a: 1\n---\nb: 2\n", "single document"),
        ("fix: \x00\n", "not valid YAML"),
        ("fix: \udcff\n", "not valid YAML"),  # a lone surrogate (undecodable bytes)
    ],
)
def test_hostile_text_is_an_action_error(text: str, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        parse_action(text)


def test_shell_metacharacters_in_the_cli_form_stay_text() -> None:
    a = parse_action({"cli": "sg run -p 'f($A)' -r '$(touch /tmp/x); `id` | sh' -l python"})
    assert a.fix == "$(touch /tmp/x); `id` | sh"  # a rewrite string, never a shell command
    with pytest.raises(ActionError, match="unsupported argument ';'"):
        parse_action({"cli": "sg run -p x -r y -l python ; rm -rf /"})
