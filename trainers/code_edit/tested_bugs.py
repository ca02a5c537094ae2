"""Bug-fix pairs *with tests*: mutate stdlib functions whose docstrings carry doctests.

HumanEvalFix pairs a buggy function with a test that the fix passes and the bug
fails.  Standard-library functions rarely ship such tests alone, but some carry
doctest examples; those examples are the test.  For each such function (from an
allow-list of side-effect-free modules, decontaminated against HumanEval like
the rest of the corpus) we try the seeded single-token mutations of
:mod:`trainers.code_edit.mutations` until one is *verified*: the original passes
its doctests and the mutant fails them, each run in a fresh ``python``
subprocess with a timeout.  Unverified mutants (equivalent, or not reached by
the examples) are dropped — a bug-fix record is only as good as the proof that
it is a bug.

The code run here is the standard library and our own one-token mutation of
it, not model output, so a subprocess (not the Docker sandbox) is enough.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data.contamination import bench_items, decontaminate
from trainers.code_edit.mutations import BugPair, apply_mutation, candidates

__all__ = ["DOCTEST_MODULES", "TestedBug", "doctested_functions", "test_program", "tested_bugs"]

#: stdlib modules whose doctested top-level functions are pure enough to run in isolation
DOCTEST_MODULES: tuple[str, ...] = ("difflib", "heapq", "ipaddress", "statistics", "textwrap")
_TIMEOUT_S = 20.0
_TRIES = 4


@dataclass(frozen=True)
class TestedBug:
    """A verified bug: ``pair.pre`` fails ``tests``, ``pair.post`` passes them."""

    module: str
    name: str
    pair: BugPair
    tests: str


def doctested_functions(modules: Sequence[str] = DOCTEST_MODULES) -> list[tuple[str, str, str]]:
    """(module, name, source) of undecorated public top-level functions with ``>>>`` examples."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[tuple[str, str, str]] = []
    for mod in modules:
        source = (root / f"{mod}.py").read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if not doc or ">>>" not in doc or node.name.startswith("_") or node.decorator_list:
                continue
            text = ast.get_source_segment(source, node)
            if text:
                found.append((mod, node.name, text + "\n"))
    kept, _ = decontaminate([t for _, _, t in found], bench_items("humaneval"))
    keep = set(kept)
    return [f for f in found if f[2] in keep]


def test_program(module: str, name: str) -> str:
    """Appended after the function: the module's other globals, then its doctests must pass."""
    return (
        "\nimport doctest as _doctest, importlib as _importlib\n"
        f"_g = vars(_importlib.import_module({module!r}))\n"
        f"globals().update({{k: v for k, v in _g.items() if k != {name!r} "
        "and not k.startswith('__')})\n"
        f"_t = _doctest.DocTestFinder().find(globals()[{name!r}], {name!r}, globs=globals())\n"
        "_r = _doctest.DocTestRunner(verbose=False, optionflags=_doctest.ELLIPSIS)\n"
        "for _x in _t:\n    _r.run(_x, out=lambda _s: None)\n"
        "assert _r.tries > 0, 'no doctest ran'\n"
        "assert _r.failures == 0, f'{_r.failures} doctest failure(s)'\n"
    )


def _passes(code: str, tests: str) -> bool:
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", code + tests],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def tested_bugs(*, seed: int = 0, modules: Sequence[str] = DOCTEST_MODULES) -> list[TestedBug]:
    """One verified bug per doctested function where a tried mutation breaks its doctests."""
    rng = random.Random(seed)
    out: list[TestedBug] = []
    for mod, name, text in doctested_functions(modules):
        tests = test_program(mod, name)
        if not _passes(text, tests):
            continue  # the original must pass its own examples
        options = candidates(text)
        rng.shuffle(options)
        for m in options[:_TRIES]:
            buggy = apply_mutation(text, m)
            if buggy != text and not _passes(buggy, tests):
                out.append(TestedBug(mod, name, BugPair(m, buggy, text), tests))
                break
    return out
