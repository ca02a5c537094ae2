"""The public API is curated and every error the project raises is a ``HarnessError``.

Checked on the syntax tree of every module under ``harness/``, ``trainers/`` and
``sandbox/`` (nothing is imported, so the check costs no torch import):

1. a module's ``__all__`` is a literal list of names the module defines or imports,
   without private names (dunders such as ``__version__`` excepted) and without
   duplicates; ``harness/__init__.py``'s lazy table resolves exactly its ``__all__``;
2. every exception class is rooted in :class:`harness.errors.HarnessError`, so a
   caller can catch the project's errors in one ``except`` — except the internal
   signals in :data:`NOT_ROOTED`, each with the reason it never reaches a caller.
"""

from __future__ import annotations

import ast
import builtins
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "trainers", "sandbox")

#: "path::class" → why this exception is not a HarnessError
NOT_ROOTED: dict[str, str] = {
    "harness/spec.py::_FieldError": (
        "raised inside pydantic validators, which turn only ValueError/AssertionError into a "
        "ValidationError; load_phase reports it as a SpecError"
    ),
    "harness/backends/openai_compat.py::RetryableError": (
        "tenacity's retry signal; _post turns the last one into a BackendError"
    ),
    "trainers/circuit_breaker/trainer.py::_StopForward": (
        "control flow: stops the forward pass after the target layer, caught by the caller"
    ),
    "sandbox/pool.py::ChannelDead": (
        "a dead worker channel inside the pool, turned into a retry or a sandbox_error result"
    ),
}

_BUILTIN_EXCEPTIONS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


@functools.cache
def _trees() -> dict[str, ast.Module]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                out[rel] = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    return out


def _all_of(tree: ast.Module) -> ast.expr | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return node.value
    return None


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the module binds anywhere: definitions, assignments, imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_all_is_a_curated_list_of_existing_public_names() -> None:
    problems = []
    for rel, tree in _trees().items():
        value = _all_of(tree)
        if value is None:
            continue
        try:
            names = ast.literal_eval(value)
        except ValueError:
            problems.append(f"{rel}: __all__ is not a literal list")
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        missing = sorted(set(names) - _bound_names(tree))
        if private or missing or len(set(names)) != len(names):
            problems.append(f"{rel}: private {private}, undefined {missing}, or duplicates")
    assert not problems, problems


def test_the_package_root_resolves_exactly_its_all() -> None:
    import harness

    lazy = set(harness._WHERE)
    assert lazy == set(harness.__all__) - {"__version__"}
    for name in sorted(lazy):
        assert getattr(harness, name) is not None, name
    assert harness.HarnessError.__module__ == "harness.errors"


def _exception_classes() -> dict[str, list[str]]:
    """``"path::class"`` → base names, for every class whose bases name an exception."""
    classes: dict[str, list[str]] = {}
    for rel, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
                classes[f"{rel}::{node.name}"] = [b.rsplit(".", 1)[-1] for b in bases]
    rooted = {"HarnessError"}
    changed = True
    while changed:  # names of classes that derive from HarnessError, transitively
        changed = False
        for key, bases in classes.items():
            name = key.rsplit("::", 1)[1]
            if name not in rooted and rooted & set(bases):
                rooted.add(name)
                changed = True
    return {
        key: bases
        for key, bases in classes.items()
        if (set(bases) & _BUILTIN_EXCEPTIONS) and not (set(bases) & rooted)
    }


def test_every_exception_is_rooted_in_harness_error() -> None:
    unrooted = sorted(
        set(_exception_classes()) - set(NOT_ROOTED) - {"harness/errors.py::HarnessError"}
    )
    assert not unrooted, (
        f"exception classes not derived from harness.errors.HarnessError: {unrooted}; derive "
        "from HarnessError (or its subclass for the area), or list an internal signal in "
        "NOT_ROOTED with the reason it never reaches a caller"
    )
    stale = sorted(set(NOT_ROOTED) - set(_exception_classes()))
    assert not stale, f"remove from NOT_ROOTED (now rooted or gone): {stale}"


def test_artifact_errors_are_harness_errors() -> None:
    from harness.errors import HarnessError, TrainerError
    from trainers.bitnet.packing import ArtifactError

    assert issubclass(ArtifactError, TrainerError) and issubclass(ArtifactError, HarnessError)
    assert issubclass(ArtifactError, ValueError)  # callers that caught ValueError still do
