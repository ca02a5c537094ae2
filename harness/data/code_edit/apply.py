"""Apply an ast-grep action to code with the real ``ast-grep`` binary (local, not sandboxed).

This is the offline half of the Stage 1 validator: the action is parsed and
normalised first (:func:`~harness.data.code_edit.action.parse_action`), written
as canonical rule YAML beside a copy of the code in a fresh temporary
directory, and ``ast-grep scan -r rule.yml --update-all`` rewrites that copy
only.  It runs on the host, so it is **not** the sandboxed validator the issue
asks for (that needs the binary in the Docker image); a caller that applies
model-written actions should treat it as the weaker, labelled path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data.code_edit.action import AstGrepAction, parse_action
from harness.errors import HarnessError

__all__ = ["ApplyError", "apply_action", "ast_grep_binary"]

_SUFFIX = {"python": ".py", "javascript": ".js", "typescript": ".ts", "rust": ".rs", "go": ".go"}


class ApplyError(HarnessError):
    """The binary is missing, timed out, or rejected the rule; the message says which."""


def ast_grep_binary() -> Path:
    """The ``ast-grep`` executable of the ``ast-grep-cli`` wheel (beside python, else PATH)."""
    beside = Path(sys.executable).parent / "ast-grep"
    found = beside if beside.is_file() else shutil.which("ast-grep")
    if not found:
        raise ApplyError(
            "the ast-grep binary is not installed; pip install ast-grep-cli "
            "(pinned in constraints/ci.txt, part of the 'train' extra)"
        )
    return Path(found)


def apply_action(
    action: AstGrepAction | str | Mapping[str, Any], code: str, *, timeout: float = 30.0
) -> str:
    """``code`` after the action's rewrite (unchanged when the rule matches nothing)."""
    parsed = action if isinstance(action, AstGrepAction) else parse_action(action)
    binary = ast_grep_binary()
    with tempfile.TemporaryDirectory(prefix="ast-grep-apply-") as tmp:
        target = Path(tmp) / f"input{_SUFFIX.get(parsed.language, '.txt')}"
        target.write_text(code, encoding="utf-8")
        rule = Path(tmp) / "rule.yml"
        rule.write_text(parsed.rule_yaml(), encoding="utf-8")
        try:
            proc = subprocess.run(
                [str(binary), "scan", "-r", str(rule), "--update-all", str(target)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as exc:
            raise ApplyError(
                f"ast-grep took longer than {timeout:g} s on rule {parsed.id}"
            ) from exc
        if proc.returncode not in (0, 1):
            raise ApplyError(
                f"ast-grep rejected rule {parsed.id} (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-400:]}"
            )
        return target.read_text(encoding="utf-8")
