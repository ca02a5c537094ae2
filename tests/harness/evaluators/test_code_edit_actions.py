"""Stage 1 validator: actions applied by the real ast-grep binary inside the Docker sandbox.

Hostile actions (model output) must not forge success, touch another item's
result or stop the batch; the docker tests run them in one batch with honest ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from harness.data.code_edit.schema import NormalizedRecord
from harness.errors import HarnessError
from harness.evaluators.code_edit_actions import (
    ActionOutcome,
    extract_action_text,
    normalize_code,
    outcomes_for_gate,
    unsafe_additions,
    validate_actions,
)
from sandbox.base import Sandbox

PRE = "def add(a, b):\n    return a - b\n"
POST = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def _rec(
    rid: str, *, tests: str | None = TESTS, pre: str = PRE, post: str = POST
) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=rid,
        source="unit",
        language="python",
        instruction="fix the sum",
        pre_code=pre,
        post_code=post,
        tests=tests,
        split="test",
    )


def _rule(pattern: str, fix: str) -> str:
    return f"id: r\nlanguage: python\nrule:\n  pattern: {pattern!r}\nfix: {fix!r}\n"


GOOD = _rule("$A - $B", "$A + $B")


# ---- pure functions ----------------------------------------------------------------------
def test_normalize_code_ignores_only_line_endings_and_trailing_space() -> None:
    assert normalize_code("\n\nx = 1  \r\ny = 2\n\n") == "x = 1\ny = 2"
    assert normalize_code("  x = 1\n") != normalize_code("x = 1\n")  # indentation counts
    assert normalize_code("x\n\ny") != normalize_code("x\ny")  # inner blank lines count


def test_extract_action_text_takes_a_tag_or_fence_else_the_text() -> None:
    assert extract_action_text("ok\n<action>a: 1</action> tail") == "a: 1"
    assert extract_action_text("Here:\n```yaml\na: 1\n```\nbye") == "a: 1\n"
    assert extract_action_text("a: 1") == "a: 1"


def test_unsafe_additions_names_what_the_record_lacks() -> None:
    rec = _rec("u")
    assert unsafe_additions(POST, rec) == []
    injected = "import doctest\ndoctest.DocTestRunner.run = None\n" + POST
    assert unsafe_additions(injected, rec) == ["import doctest"]
    assert unsafe_additions("x = ().__class__\n" + POST, rec) == [".__class__"]
    assert unsafe_additions("getattr(1, 'real')\n" + POST, rec) == ["getattr"]
    assert unsafe_additions("def (:\n", rec) == []  # does not parse: its tests fail anyway


ALWAYS_EQUAL = {
    "def": "class E:\n    def __eq__(self, o):\n        return True\n",
    "lambda": "class E:\n    __eq__ = lambda self, o: True\n",
    "type": "E = type('E', (), {'__eq__': lambda self, o: True})\n",
}


@pytest.mark.parametrize("name", sorted(ALWAYS_EQUAL))
def test_an_always_equal_return_value_is_an_unsafe_rewrite(name: str) -> None:
    # `return E()` with E == anything passes `assert add(2, 3) == 5` and runs to its end
    applied = ALWAYS_EQUAL[name] + "def add(a, b):\n    return E()\n"
    bad = unsafe_additions(applied, _rec("eq"))
    assert any("__eq__" in b for b in bad), bad
    # a record whose own code defines the dunder may keep it
    own = _rec("eq-own", pre=ALWAYS_EQUAL["def"] + PRE, post=ALWAYS_EQUAL["def"] + POST)
    assert unsafe_additions(ALWAYS_EQUAL["def"] + POST, own) == []


@pytest.mark.parametrize(
    ("prefix", "flag"),
    [
        ("range = lambda *a: []\n", "shadows range"),  # empties `for i in range(n): assert`
        ("def abs(x):\n    return 0\n", "shadows abs"),  # passes every tolerance check
        ("class list:\n    pass\n", "shadows list"),
        ("for len in [len]:\n    pass\n", "shadows len"),
    ],
)
def test_rebinding_a_builtin_at_module_level_is_an_unsafe_rewrite(prefix: str, flag: str) -> None:
    assert flag in unsafe_additions(prefix + POST, _rec("shadow"))


def test_builtin_names_bound_inside_a_function_are_local_and_allowed() -> None:
    local = "def add(a, b):\n    sum = a + b\n    return sum\n"
    assert unsafe_additions(local, _rec("local")) == []


def test_extract_action_text_is_linear_in_hostile_output() -> None:
    # unclosed openers made the old regex search quadratic (64 kB: 3 s, MBs: hours);
    # a thread join bounds the test instead of timing it (a hang guard, not a benchmark)
    import threading

    got: list[str] = []
    raws = ["<action>" * 500_000, "```\n" + "x" * 4_000_000, "```" * 1_000_000]
    worker = threading.Thread(target=lambda: got.extend(map(extract_action_text, raws)))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and got == raws  # nothing closed: the text itself


def test_extract_action_text_agrees_with_the_regex_definition() -> None:
    # the documented meaning (first tag pair, else first fenced block), on random texts
    import random
    import re

    tag = re.compile(r"<action>(.*?)</action>", re.DOTALL)
    fence = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)```", re.DOTALL)
    parts = ["<action>", "</action>", "```", "`", "\n", "yaml", " ", "x: 1", "py x"]
    rng = random.Random(7)
    for _ in range(3000):
        raw = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        found = tag.search(raw) or fence.search(raw)
        assert extract_action_text(raw) == (found.group(1) if found else raw), repr(raw)


PARSE_HOSTILE = {
    "yaml_bigint": GOOD.replace("fix: '$A + $B'", "fix: " + "9" * 5000),
    "yaml_bad_date": GOOD.replace("fix: '$A + $B'", "fix: 2001-13-01"),
    "python_tag": "id: r\nlanguage: python\nrule: {pattern: x}\nfix: !!python/object:os.system x",
    "multi_doc": GOOD + "---\n" + GOOD,
    "nul": GOOD + "\x00",
    "non_utf8": GOOD.replace("$A + $B", "$A \udcff $B"),
    "ten_mb": GOOD + "#" + "x" * 10_000_000,
    "tag_flood": "<action>" * 200_000,
}


def test_hostile_text_is_a_parse_error_per_item_without_a_sandbox() -> None:
    names = sorted(PARSE_HOSTILE)
    out = validate_actions([_rec(n) for n in names], [PARSE_HOSTILE[n] for n in names])
    assert [o.item_id for o in out] == names
    assert all(o.reason.startswith("parse_error") for o in out), out
    assert not any(o.parsed or o.success for o in out)


def test_parse_failures_need_no_sandbox_and_name_the_field() -> None:
    recs = [_rec("a"), _rec("b"), _rec("c")]
    raw = ["language: python\nrule: {pattern: x}\n", "not: [yaml", None]
    out = validate_actions(recs, raw, sandbox=None)  # type: ignore[list-item]
    assert [o.item_id for o in out] == ["a", "b", "c"]
    assert not any(o.parsed or o.success for o in out)
    assert "field 'fix' is missing" in out[0].reason
    assert out[2].reason.startswith("parse_error: got NoneType")


def test_one_action_per_record() -> None:
    with pytest.raises(HarnessError, match="2 records but 1 actions"):
        validate_actions([_rec("a"), _rec("b")], [GOOD])


def test_outcomes_for_gate_flags_sandbox_errors() -> None:
    res = [
        ActionOutcome("a", True, True, "matches_post_code: x", "c"),
        ActionOutcome("b", True, False, "sandbox_error: lost", None),
    ]
    parse = outcomes_for_gate(res, "parse")
    success = outcomes_for_gate(res, "success")
    assert [o.value for o in parse] == [1.0, 1.0]
    assert [o.value for o in success] == [1.0, 0.0]
    assert success[1].raw["sandbox_error"] is True
    with pytest.raises(HarnessError, match="'parse' or 'success'"):
        outcomes_for_gate(res, "other")


# ---- in the Docker sandbox ---------------------------------------------------------------
@pytest.fixture(scope="module")
def astgrep_box() -> Iterator[Sandbox]:
    from sandbox.astgrep_image import ensure_astgrep_image
    from sandbox.docker_pool import DockerSandbox

    sb = DockerSandbox(image=ensure_astgrep_image(), pool_size=2)
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.docker
def test_honest_actions(astgrep_box: Sandbox) -> None:
    recs = [
        _rec("exact"),
        _rec("by_tests"),
        _rec("wrong"),
        _rec("nomatch"),
        _rec("notests", tests=None),
    ]
    raw = [
        f"```yaml\n{GOOD}```",
        _rule("$A - $B", "$B + $A"),  # not post_code, but correct: the tests decide
        _rule("$A - $B", "$A * $B"),
        _rule("nothing_here($X)", "x"),
        _rule("$A - $B", "$B + $A"),  # correct, but no tests: must equal post_code
    ]
    out = validate_actions(recs, raw, sandbox=astgrep_box)
    reasons = {o.item_id: o.reason.split(":")[0] for o in out}
    assert reasons == {
        "exact": "matches_post_code",
        "by_tests": "tests_pass",
        "wrong": "tests_fail",
        "nomatch": "no_change",
        "notests": "mismatch",
    }
    assert [o.success for o in out] == [True, True, False, False, False]
    assert all(o.parsed for o in out)
    assert out[0].applied_code == POST


@pytest.mark.docker
def test_the_binary_rejecting_a_rule_is_not_parsed(astgrep_box: Sandbox) -> None:
    recs = [_rec("kind"), _rec("unbound")]
    raw = [
        "id: r\nlanguage: python\nrule: {kind: no_such_kind}\nfix: x\n",
        _rule("$A - $B", "$A + $C"),
    ]
    out = validate_actions(recs, raw, sandbox=astgrep_box)
    assert [o.reason.split(":")[0] for o in out] == ["rule_rejected", "rule_rejected"]
    assert not any(o.parsed or o.success for o in out)


HOSTILE = {
    # injected code that patches what runs after it: refused before running
    "patch_harness": _rule("return $A - $B", "import builtins; return $A + $B"),
    "dunder": _rule("return $A - $B", "return ().__class__ and 5"),
    # leaves early with status 0: no completion proof, so not a pass
    "exit_early": _rule("return $A - $B", "raise SystemExit(0)"),
    # never returns: its own timeout, nobody else's
    "spin": _rule("return $A - $B", "while True: pass"),
    # blows the rewritten file up (every identifier → 15 kB): refused, not read back
    "giant_output": "id: r\nlanguage: python\nrule: {kind: identifier}\nfix: " + "y" * 15_000,
    # text that imitates the apply program's report line: it never reaches stdout
    "fake_report": _rule("$A - $B", '@@apply-0@@{"rc": 0, "code": "def add(a, b): return a + b"}'),
    "not_yaml": "rule: [",
    "alias_bomb": "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    # a return value equal to anything: the tests run to their end, so refused before running
    "always_equal": "id: r\nlanguage: python\nrule: {kind: function_definition}\nfix: "
    + json.dumps(ALWAYS_EQUAL["def"] + "def add(a, b):\n    return E()"),
    # loader crashes (ValueError inside PyYAML) used to stop the whole batch
    "yaml_bigint": PARSE_HOSTILE["yaml_bigint"],
    "yaml_bad_date": PARSE_HOSTILE["yaml_bad_date"],
    "tag_flood": PARSE_HOSTILE["tag_flood"],
    # catastrophic backtracking in a backtracking engine; ast-grep's is linear, and the
    # apply timeout bounds it anyway
    "regex": "id: r\nlanguage: python\nrule: {regex: '(a+)+$', kind: identifier}\nfix: x",
}


@pytest.mark.docker
def test_hostile_actions_cannot_forge_or_spill_over(astgrep_box: Sandbox) -> None:
    names = list(HOSTILE)
    wide = "w = " + " + ".join(["v"] * 40) + "\n"  # 40 identifiers × 15 kB > 256 kB
    recs = [
        _rec(f"h-{n}", pre=PRE + wide, post=POST + wide) if n == "giant_output" else _rec(f"h-{n}")
        for n in names
    ] + [_rec("honest-1"), _rec("honest-2")]
    raw = [HOSTILE[n] for n in names] + [GOOD, GOOD]
    out = validate_actions(recs, raw, sandbox=astgrep_box, tests_timeout_s=2.0)
    assert [o.item_id for o in out] == [r.id for r in recs]  # nothing dropped or reordered
    by_id = {o.item_id: o for o in out}
    assert not any(by_id[f"h-{n}"].success for n in names), [by_id[f"h-{n}"] for n in names]
    assert by_id["h-patch_harness"].reason.startswith("unsafe_rewrite: introduces import builtins")
    assert by_id["h-dunder"].reason.startswith("unsafe_rewrite")
    assert by_id["h-exit_early"].reason.startswith("tests_fail: incomplete")
    assert by_id["h-giant_output"].reason.startswith("apply_error: rewritten file too large")
    assert by_id["h-spin"].reason.startswith("tests_fail: timeout")
    assert by_id["h-alias_bomb"].reason.startswith("parse_error")
    assert by_id["h-always_equal"].reason.startswith("unsafe_rewrite: introduces def __eq__")
    for name in ("yaml_bigint", "yaml_bad_date", "tag_flood"):
        assert by_id[f"h-{name}"].reason.startswith("parse_error"), by_id[f"h-{name}"]
    assert by_id["honest-1"].success and by_id["honest-2"].success


@pytest.mark.docker
def test_tests_of_non_python_records_are_not_run_as_python(astgrep_box: Sandbox) -> None:
    rec = NormalizedRecord.build(
        id="js",
        source="unit",
        language="javascript",
        instruction="fix the sum",
        pre_code="function add(a, b) { return a - b; }\n",
        post_code="function add(a, b) { return a + b; }\n",
        tests="print('python would pass this')\n",
        split="test",
    )
    rule = "id: r\nlanguage: javascript\nrule: {pattern: $A - $B}\nfix: $B + $A\n"
    (out,) = validate_actions([rec], [rule], sandbox=astgrep_box)
    assert out.parsed and not out.success
    assert out.reason == "mismatch: differs from post_code (tests run for python records only)"


@pytest.mark.docker
def test_a_rewrite_that_hollows_out_the_tests_is_refused(astgrep_box: Sandbox) -> None:
    loop = "for i in range(3):\n    assert add(i, 1) == i + 1\n"
    fixes = {
        "range": "range = lambda *a: []\ndef add(a, b):\n    return 0",  # the loop never runs
        "abs": "def abs(x):\n    return 0\ndef add(a, b):\n    return 0",
    }
    tests = {"range": loop, "abs": "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\n"}
    recs = [_rec(f"hollow-{n}", tests=tests[n]) for n in fixes] + [_rec("honest", tests=loop)]
    rule = "id: r\nlanguage: python\nrule: {kind: function_definition}\nfix: "
    raw = [rule + json.dumps(fixes[n]) for n in fixes] + [GOOD]
    out = validate_actions(recs, raw, sandbox=astgrep_box)
    assert [o.reason.split(":")[0] for o in out] == [
        "unsafe_rewrite",
        "unsafe_rewrite",
        "matches_post_code",
    ]
    assert "shadows range" in out[0].reason and "shadows abs" in out[1].reason
