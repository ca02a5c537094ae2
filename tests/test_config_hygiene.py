"""Config hygiene, enforced by scanning the source tree (issue #15, section 1).

Two rules, checked on the syntax tree of every module under ``harness/``,
``trainers/``, ``sandbox/`` and ``suites/`` (strings — e.g. the hostile
programs of the sandbox battery — are not code and are not matched):

1. **Environment**: only :mod:`harness.settings` reads ``os.environ`` /
   ``os.getenv`` (or writes them).  Everything else asks ``get_settings()``,
   so the table in docs/settings.md is complete and one place decides defaults.
2. **Atomic writes**: files are published through :mod:`harness.atomic`; no
   ``write_text``/``write_bytes``, ``open(..., "w"/"a"/"x")``, ``os.fdopen(...,
   "w")``, ``os.replace``/``os.rename`` or ``shutil.move`` elsewhere.

Legitimate exceptions are listed below, each with the reason; an entry that
no longer matches anything fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "trainers", "sandbox", "suites")

#: (module path, rule) → why the rule does not apply there
ALLOWED: dict[tuple[str, str], str] = {
    ("harness/settings.py", "environ"): "the one module that reads the environment",
    ("harness/atomic.py", "write"): "the atomic-write primitives themselves",
    ("sandbox/driver.py", "environ"): (
        "the in-sandbox driver: a stdlib-only program run inside the container (it cannot "
        "import gate-harness) that builds each child program's environment"
    ),
    ("sandbox/driver.py", "write"): (
        "the in-sandbox driver writes the program's files inside the throw-away container"
    ),
    ("harness/lanes/agentdojo_client.py", "write"): (
        "runs in the AgentDojo venv, which cannot import gate-harness: its own "
        "tmp + fsync + os.replace"
    ),
    ("harness/lanes/agentdojo_export.py", "write"): (
        "runs in the AgentDojo venv, which cannot import gate-harness: its own "
        "tmp + fsync + os.replace"
    ),
    ("harness/plugin.py", "write"): (
        "moves a previous evidence.jsonl aside (a rename of a finished file, not a write)"
    ),
    ("harness/data/code_edit/apply.py", "write"): (
        "scratch input for the ast-grep binary in a private temporary directory"
    ),
    ("trainers/code_edit/codemods.py", "write"): (
        "scratch input for the ast-grep binary in a private temporary directory"
    ),
    ("trainers/circuit_breaker/trainer.py", "write"): (
        "the training log streams into the run directory before its commit marker "
        "(written with harness.atomic) publishes the run; readers check the marker"
    ),
    ("sandbox/image.py", "write"): (
        "debootstrap's log, a marker file inside the rootfs being built in a temporary "
        "directory, and os.replace publishing the tarball tar wrote next to it"
    ),
}

_WRITE_MODES = ("w", "a", "x")


def _modules() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts
    )


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _mode_of(call: ast.Call, position: int) -> str | None:
    args = [a for a in call.args]
    node = args[position] if len(args) > position else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _atomic_dir_blocks(tree: ast.AST) -> list[tuple[int, int]]:
    """Line ranges of ``with atomic_dir(...) as tmp:`` bodies: files written there are
    published together when the directory is renamed into place."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Call)
            and _dotted(item.context_expr.func).split(".")[-1] == "atomic_dir"
            for item in node.items
        ):
            spans.append((node.body[0].lineno, node.body[-1].end_lineno or node.lineno))
    return spans


def violations(tree: ast.AST) -> list[tuple[int, str, str]]:
    """``(line, rule, what)`` for every environment read and non-atomic write in ``tree``."""
    out: list[tuple[int, str, str]] = []
    inside = _atomic_dir_blocks(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(a <= node.lineno <= b for a, b in inside):
            continue
        if isinstance(node, ast.Attribute) and _dotted(node) in (
            "os.environ",
            "os.getenv",
            "os.putenv",
            "os.unsetenv",
        ):
            out.append((node.lineno, "environ", _dotted(node)))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names} & {"environ", "getenv", "putenv"}
            out += [(node.lineno, "environ", f"from os import {n}") for n in sorted(names)]
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            attr = node.func.attr if isinstance(node.func, ast.Attribute) else name
            if attr in ("write_text", "write_bytes"):
                out.append((node.lineno, "write", f".{attr}()"))
            elif name in ("os.replace", "os.rename", "shutil.move"):
                out.append((node.lineno, "write", f"{name}()"))
            elif any(kw.arg == "fileobj" for kw in node.keywords):
                continue  # tarfile/gzip over an in-memory buffer: not a file write
            elif name in ("open", "io.open", "os.fdopen") or attr == "open":
                position = 0 if attr == "open" and name not in ("open", "io.open") else 1
                mode = _mode_of(node, position)
                if mode and mode[0] in _WRITE_MODES:
                    out.append((node.lineno, "write", f"{name or attr}(..., {mode!r})"))
    return out


def _scan() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for line, rule, what in violations(tree):
            found.setdefault((rel, rule), []).append(f"{rel}:{line}: {what}")
    return found


def test_only_settings_reads_the_environment_and_writes_are_atomic() -> None:
    found = _scan()
    bad = [hit for key, hits in sorted(found.items()) if key not in ALLOWED for hit in hits]
    assert not bad, (
        "read the environment through harness.settings (declare the variable in "
        "OPTION_VARS) and publish files with harness.atomic; offenders:\n  " + "\n  ".join(bad)
    )


def test_allow_list_has_no_stale_entries() -> None:
    found = _scan()
    stale = [f"{path} ({rule})" for path, rule in ALLOWED if (path, rule) not in found]
    assert not stale, f"allow-list entries that match nothing any more: {stale}"


@pytest.mark.parametrize(
    ("source", "rules"),
    [
        ("import os\nos.environ.get('X')\n", ["environ"]),
        ("import os\nos.getenv('X')\n", ["environ"]),
        ("from os import environ\n", ["environ"]),
        ("p.write_text('x')\n", ["write"]),
        ("open('f', 'w').write('x')\n", ["write"]),
        ("open('f', mode='ab')\n", ["write"]),
        ("path.open('w')\n", ["write"]),
        ("import os\nos.fdopen(fd, 'w')\n", ["write"]),
        ("import os\nos.replace(a, b)\n", ["write"]),
        ("open('f').read()\n", []),
        ("import tarfile\ntarfile.open(fileobj=buf, mode='w')\n", []),
        ("with atomic_dir(d) as tmp:\n    (tmp / 'x').write_text('y')\n", []),
        ("path.open(encoding='utf-8')\n", []),
        ("code = \"import os\\nos.environ['X'] = '1'\\nopen('/x', 'w')\"\n", []),
    ],
)
def test_scanner_catches_what_it_claims(source: str, rules: list[str]) -> None:
    assert sorted(Counter(rule for _, rule, _ in violations(ast.parse(source)))) == rules
