"""SRL action-similarity reward: ``R = 0.7·S_field + 0.3·S_str``, clipped to [−0.2, 1.0].

The student's action is parsed with :func:`harness.data.code_edit.action.parse_action`;
if it does not parse, ``R = −0.2`` (``INVALID_REWARD``) — worse than any valid
action, so the policy learns that emitting a rule at all beats emitting noise.

* ``S_field`` — field-level match of the normalised actions: both are flattened
  to dotted paths (``language``, ``fix``, ``rule.pattern``, ``rule.inside.kind``,
  ``constraints.A.regex`` …; ``id`` is a label and is left out), each value
  whitespace-collapsed; ``S_field = |paths with equal values| / |union of paths|``
  (Jaccard over (path, value) agreement).  A missing path in either action counts
  as a mismatch.
* ``S_str`` — ``difflib.SequenceMatcher(None, teacher, student, autojunk=False).ratio()``
  on the canonical rule YAML (:meth:`AstGrepAction.rule_yaml`; sorted keys, so key
  order does not matter).  ``autojunk=False`` because its heuristic treats
  frequent characters of texts over 200 characters as junk, which makes long
  rules look dissimilar for no reason.

Both scores lie in [0, 1], so for a valid action ``R`` lies in [0, 1] and the
clip only matters for the invalid branch; it is kept so the reward's range is
the brief's whatever the weights.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from harness.data.code_edit.action import ActionError, AstGrepAction, parse_action

__all__ = [
    "INVALID_REWARD",
    "W_FIELD",
    "W_STR",
    "field_score",
    "flatten_action",
    "reward_srl",
    "string_score",
]

W_FIELD = 0.7
W_STR = 0.3
INVALID_REWARD = -0.2
R_MIN, R_MAX = -0.2, 1.0


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k in sorted(value, key=str):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(f"{prefix}[{i}]", item, out)
    else:
        out[prefix] = " ".join(str(value).split())


def flatten_action(action: AstGrepAction) -> dict[str, str]:
    """Dotted path → whitespace-collapsed value, for every compared field (not ``id``)."""
    out: dict[str, str] = {}
    doc = {"language": action.language, "rule": action.rule, "fix": action.fix}
    if action.constraints:
        doc["constraints"] = action.constraints
    _flatten("", doc, out)
    return out


def field_score(teacher: AstGrepAction, student: AstGrepAction) -> float:
    """Share of (path, value) pairs that agree, over the union of paths of both actions."""
    t, s = flatten_action(teacher), flatten_action(student)
    paths = set(t) | set(s)
    if not paths:
        return 1.0
    return sum(1 for p in paths if p in t and p in s and t[p] == s[p]) / len(paths)


def string_score(teacher: AstGrepAction, student: AstGrepAction) -> float:
    """``SequenceMatcher(autojunk=False).ratio()`` of the canonical rule YAMLs."""
    return difflib.SequenceMatcher(
        None, teacher.rule_yaml(), student.rule_yaml(), autojunk=False
    ).ratio()


def reward_srl(
    teacher: AstGrepAction | str | Mapping[str, Any],
    student: AstGrepAction | str | Mapping[str, Any],
) -> float:
    """The SRL reward of ``student`` against ``teacher`` (teacher must parse; student may not)."""
    gold = teacher if isinstance(teacher, AstGrepAction) else parse_action(teacher)
    try:
        pred = student if isinstance(student, AstGrepAction) else parse_action(student)
    except ActionError:
        return INVALID_REWARD
    r = W_FIELD * field_score(gold, pred) + W_STR * string_score(gold, pred)
    return min(R_MAX, max(R_MIN, r))
