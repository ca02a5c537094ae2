"""Trainers never import evaluators (data flows spec → subject → outcomes → decision).

Checked on the source, lazy imports inside functions included, so a trainer cannot
reach a gate's evaluator to shape what it is judged on.
"""

from __future__ import annotations

import ast
from pathlib import Path

TRAINERS = Path(__file__).resolve().parents[2] / "trainers"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_trainers_do_not_import_evaluators() -> None:
    offenders = [
        f"{path.relative_to(TRAINERS.parent)}: {name}"
        for path in sorted(TRAINERS.rglob("*.py"))
        for name in _imports(path)
        if name == "harness.evaluators" or name.startswith("harness.evaluators.")
    ]
    assert offenders == [], offenders
