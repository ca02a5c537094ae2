"""Where the embedded code-edit records come from: train from the pretraining part of the
standard library, dev/test from its reserved part only.

Why: the phase's base model (``tiny-code``) pretrains on documented standard-library
functions (:mod:`trainers.code_corpus`).  A held-out edit of a function the base has
read is not held out — for a bug fix, the answer (``post_code``) is the pretrained
text.  So the library is partitioned by module file (:func:`trainers.code_corpus.
is_reserved`): ``tiny-code`` never sees the reserved files, and dev/test records are
drawn only from them.  Train records come from the pretraining part (editing code the
base has seen is fine for training).

The reserved part is small (a quarter of the files), so held-out codemods are taken
from *every* short function and method of a reserved file (:func:`reserved_units`),
not only documented top-level functions: there are too few of those matching a rule
to judge the action gates on ≥ 100 test rows.  Train codemods are drawn from the same
population — every short function and method — of the pretraining part
(:func:`edit_units`), so a model is never judged on a codemod shape (a method, an
undocumented or nested function) it had no training row for
(:func:`harness.data.code_edit.shape.shape_parity` checks it).  A unit text found in
both parts belongs to the reserved part.  Bug fixes use documented top-level functions
on both sides (the unit of ``tiny-code``'s corpus).  HumanEval (the codegen benchmark)
is dropped from all of them by 13-gram overlap.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data.contamination import bench_items, decontaminate
from trainers.code_corpus import (
    MAX_BODY_LINES,
    MAX_CHARS,
    Part,
    code_corpus,
    is_reserved,
    source_files,
    stdlib_functions,
    stdlib_root,
)

__all__ = [
    "Sources",
    "edit_units",
    "embedded_sources",
    "module_reserved",
    "reserved_units",
    "train_units",
]


@dataclass(frozen=True)
class Sources:
    """The texts the generator turns into records, and the base model's pretraining texts."""

    train_functions: list[str]  # documented top-level functions, pretraining part
    train_units: list[str]  # every short function and method, pretraining part (codemods)
    heldout_functions: list[str]  # documented top-level functions, reserved part
    heldout_units: list[str]  # every short function and method, reserved part
    pretrain_corpus: list[str]  # what tiny-code trains on (held-out rows must share no 13-gram)


def _unit_text(node: ast.FunctionDef, lines: list[str]) -> str | None:
    if node.end_lineno is None or node.end_lineno - node.lineno > MAX_BODY_LINES:
        return None
    text = textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])) + "\n"
    if len(text) > MAX_CHARS or not text.startswith("def "):
        return None
    try:
        ast.parse(text)
    except SyntaxError:  # a body that only parses inside its class (rare)
        return None
    return text


def edit_units(root: Path | None = None, *, part: Part) -> list[str]:
    """Every function or method (≤ the corpus's length limits, decorators excluded) of the
    files in ``part``, dedented, deduplicated, in file and source order, HumanEval-free:
    the codemod population, the same rule for train (``pretrain``) and held-out
    (``reserved``)."""
    seen: set[str] = set()
    out: list[str] = []
    for f in source_files(root, part=part):
        try:
            source = f.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                text = _unit_text(node, lines)
                if text is not None and text not in seen:
                    seen.add(text)
                    out.append(text)
    kept, _ = decontaminate(out, bench_items("humaneval"))
    return kept


def reserved_units(root: Path | None = None) -> list[str]:
    """The held-out codemod population: :func:`edit_units` of the reserved files."""
    return edit_units(root, part="reserved")


def train_units(root: Path | None = None, *, reserved: Sequence[str] = ()) -> list[str]:
    """The train codemod population: :func:`edit_units` of the pretraining files, minus
    any text that is also a reserved unit (``reserved``: the held-out side owns it)."""
    owned = set(reserved)
    return [u for u in edit_units(root, part="pretrain") if u not in owned]


def module_reserved(module: str) -> bool:
    """Whether the top-level stdlib module ``module`` (``<root>/<module>.py``) is reserved."""
    return is_reserved(f"{module}.py")


def embedded_sources() -> Sources:
    """The default sources: this interpreter's standard library, partitioned.

    ``pretrain_corpus`` is the exact text list the default ``tiny-code`` build trains on
    (:func:`trainers.tiny.tiny_code_corpus`, generated snippets included).
    """
    from trainers.tiny import TinyCodeTrainConfig, tiny_code_corpus

    heldout, _ = stdlib_functions(part="reserved")
    heldout_kept, _ = decontaminate(heldout, bench_items("humaneval"))
    pretrain, _ = tiny_code_corpus(TinyCodeTrainConfig())
    heldout_units = reserved_units(stdlib_root())
    return Sources(
        train_functions=code_corpus().texts,
        train_units=train_units(stdlib_root(), reserved=heldout_units),
        heldout_functions=heldout_kept,
        heldout_units=heldout_units,
        pretrain_corpus=pretrain,
    )
