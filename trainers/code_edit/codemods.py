"""Synthetic codemods: ast-grep rules applied by the real ``ast-grep`` binary.

Each :class:`Codemod` is a rule YAML with ``fix`` (the action schema of
:mod:`harness.data.code_edit.action`).  :func:`apply_codemods` writes the input
functions as files, runs ``ast-grep scan -r rule.yml --update-all`` once per
rule, and keeps every file the binary changed whose result still parses: the
(pre, post, rule) triples are training pairs whose ground-truth action is the
rule itself.  The binary comes from the ``ast-grep-cli`` wheel (found beside the
running interpreter, else on ``PATH``).

The rules are small but of the kinds the brief names — renames, API
migrations, guard insertion, idiom rewrites; they do not claim to preserve
behaviour (``print`` → ``logging.info`` does not), only to be the edit the
instruction asks for.
"""

from __future__ import annotations

import ast
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.data.code_edit.action import AstGrepAction, parse_action
from harness.data.code_edit.apply import ast_grep_binary
from harness.errors import TrainerError

__all__ = [
    "CODEMODS",
    "Codemod",
    "CodemodPair",
    "apply_codemods",
    "ast_grep_binary",
    "rule_document",
]


@dataclass(frozen=True)
class Codemod:
    """A named rule and the instruction a user would give for it."""

    name: str
    kind: str  # rename | api_migration | guard | idiom
    instruction: str
    rule: dict[str, Any]
    fix: str

    def action(self) -> AstGrepAction:
        return parse_action(
            {"id": self.name, "language": "python", "rule": self.rule, "fix": self.fix}
        )


CODEMODS: tuple[Codemod, ...] = (
    Codemod(
        "rename-result",
        "rename",
        "Rename the variable `result` to `outcome`.",
        {"kind": "identifier", "regex": "^result$"},
        "outcome",
    ),
    Codemod(
        "print-to-logging",
        "api_migration",
        "Replace print(x) with logging.info('%s', x).",
        {"pattern": "print($A)"},
        "logging.info('%s', $A)",
    ),
    Codemod(
        "os-path-join-to-pathlib",
        "api_migration",
        "Build paths with pathlib instead of os.path.join.",
        {"pattern": "os.path.join($$$ARGS)"},
        "os.fspath(pathlib.Path($$$ARGS))",
    ),
    Codemod(
        "guard-division",
        "guard",
        "Guard the returned division against a zero divisor.",
        {"pattern": "return $X / $Y"},
        "return $X / $Y if $Y else 0",
    ),
    Codemod(
        "isinstance-str-bytes",
        "idiom",
        "Accept bytes wherever str is accepted in isinstance checks.",
        {"pattern": "isinstance($A, str)"},
        "isinstance($A, (str, bytes))",
    ),
    Codemod(
        "len-zero-to-not",
        "idiom",
        "Replace `len(x) == 0` with `not x`.",
        {"pattern": "len($X) == 0"},
        "not $X",
    ),
    Codemod(
        "keys-to-list",
        "idiom",
        "Replace `d.keys()` with `list(d)`.",
        {"pattern": "$D.keys()"},
        "list($D)",
    ),
)


@dataclass(frozen=True)
class CodemodPair:
    """One function before and after one codemod."""

    codemod: Codemod
    pre: str
    post: str


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _apply_one(
    binary: Path, mod: Codemod, functions: Sequence[str], work: Path
) -> list[CodemodPair]:
    src = work / mod.name
    src.mkdir()
    for i, text in enumerate(functions):
        (src / f"f{i:05d}.py").write_text(text, encoding="utf-8")
    rule_file = work / f"{mod.name}.yml"
    rule_file.write_text(mod.action().rule_yaml(), encoding="utf-8")
    proc = subprocess.run(
        [str(binary), "scan", "-r", str(rule_file), "--update-all", str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise TrainerError(
            f"ast-grep failed on rule {mod.name} (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    pairs = []
    for i, before in enumerate(functions):
        after = (src / f"f{i:05d}.py").read_text(encoding="utf-8")
        if after != before and _parses(after):
            pairs.append(CodemodPair(mod, before, after))
    return pairs


def apply_codemods(
    functions: Sequence[str], *, codemods: Sequence[Codemod] = CODEMODS
) -> list[CodemodPair]:
    """Every (function, codemod) pair the binary changed into code that still parses."""
    binary = ast_grep_binary()
    with tempfile.TemporaryDirectory(prefix="codemods-") as tmp:
        return [p for mod in codemods for p in _apply_one(binary, mod, functions, Path(tmp))]


def rule_document(mod: Codemod) -> dict[str, Any]:
    """The rule as a mapping (what ``NormalizedRecord.action`` stores)."""
    loaded: dict[str, Any] = yaml.safe_load(mod.action().rule_yaml())
    return loaded
