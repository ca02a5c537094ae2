"""Bug-fix pairs, HumanEvalFix-style: plant one small bug in a correct function.

A mutation edits exactly one token of the source text (located from the AST's
line/column offsets, so the rest of the function keeps its formatting): an
arithmetic operator swap (``+``↔``-``, ``*``↔``/``), a comparison swap
(``<``↔``<=``, ``>``↔``>=``, ``==``↔``!=``) or an off-by-one on an integer
literal.  The buggy text is ``pre_code``, the original ``post_code``; a mutant
that no longer parses or equals the original is discarded.  Which candidate of
a function is used is drawn from a seeded RNG, so the set is reproducible.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BugPair", "Mutation", "apply_mutation", "candidates", "mutate_functions"]

_ARITH = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*")}
_CMP = {
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
}


#: only small literals (indices, bounds, counts) get an off-by-one; 9988 → 9989 is noise
_MAX_OFF_BY_ONE = 16


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` by ``new`` at (line, col) — 1-based line, 0-based column."""

    kind: str  # operator_swap | comparison_swap | off_by_one
    line: int
    col: int
    old: str
    new: str


@dataclass(frozen=True)
class BugPair:
    """A buggy function (``pre``) and the correct original (``post``)."""

    mutation: Mutation
    pre: str
    post: str


def _between(lines: list[str], left: ast.expr, right: ast.expr, token: str) -> int | None:
    """Column of ``token`` between two sub-expressions on one line, else ``None``."""
    if left.end_lineno != right.lineno or left.end_col_offset is None:
        return None
    line = lines[right.lineno - 1]
    gap = line[left.end_col_offset : right.col_offset]
    at = gap.find(token)
    if at < 0 or gap.count(token) != 1 or gap.strip() != token:
        return None
    return left.end_col_offset + at


def candidates(source: str) -> list[Mutation]:
    """Every single-token mutation of ``source`` this module knows how to make."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out: list[Mutation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            old, new = _ARITH[type(node.op)]
            col = _between(lines, node.left, node.right, old)
            if col is not None:
                out.append(Mutation("operator_swap", node.right.lineno, col, old, new))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            old, new = _CMP[type(node.ops[0])]
            col = _between(lines, node.left, node.comparators[0], old)
            if col is not None:
                out.append(Mutation("comparison_swap", node.comparators[0].lineno, col, old, new))
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and 0 <= node.value <= _MAX_OFF_BY_ONE
            and node.lineno == node.end_lineno
            and node.end_col_offset is not None
        ):
            text = lines[node.lineno - 1][node.col_offset : node.end_col_offset]
            if text.isdigit() and text == str(node.value):
                out.append(
                    Mutation("off_by_one", node.lineno, node.col_offset, text, str(node.value + 1))
                )
    return sorted(out, key=lambda m: (m.line, m.col, m.kind))


def apply_mutation(source: str, m: Mutation) -> str:
    """``source`` with the one token of ``m`` replaced (other text untouched)."""
    lines = source.splitlines(keepends=True)
    line = lines[m.line - 1]
    lines[m.line - 1] = line[: m.col] + m.new + line[m.col + len(m.old) :]
    return "".join(lines)


def mutate_functions(functions: Sequence[str], *, seed: int = 0) -> list[BugPair]:
    """At most one bug per function (seeded choice among its candidates)."""
    rng = random.Random(seed)
    pairs: list[BugPair] = []
    for text in functions:
        try:
            options = candidates(text)
        except SyntaxError:
            continue
        if not options:
            continue
        m = options[rng.randrange(len(options))]
        buggy = apply_mutation(text, m)
        try:
            ast.parse(buggy)
        except SyntaxError:
            continue
        if buggy != text:
            pairs.append(BugPair(m, buggy, text))
    return pairs
