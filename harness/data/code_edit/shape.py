"""Edit shapes per split, and the shape-parity check between train and held-out rows.

Why: a model judged on an edit shape it never trained on is measured on an unexplained
distribution shift, not on editing.  The embedded set once had exactly that (train
codemods from top-level functions only, held-out codemods from methods too), invisible
in the per-source counts.  So every row gets a *cell* — its source, its rule (the
ground-truth action's ``id``, ``-`` for a row without one) and the *shape* of its
``pre_code`` read from the text the model sees (:func:`code_shape`) — and
:func:`shape_parity` lists the held-out (dev or test) cells no train row fills.

Sources without a single train row (a benchmark ingested test-only, e.g. CanItEdit) are
left out of the check on purpose: they are held out by design, and their shapes are
still counted in the table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from harness.data.code_edit.schema import NormalizedRecord, Split

__all__ = [
    "NO_RULE",
    "Cell",
    "CodeShape",
    "ShapeParity",
    "code_shape",
    "record_cell",
    "shape_parity",
]

#: the rule of a row without a ground-truth action
NO_RULE = "-"
_METHOD_FIRST_ARGS = frozenset({"self", "cls"})


class CodeShape(StrEnum):
    """What the pre-code is, as far as its text shows."""

    FUNCTION = "function"  # one ``def`` whose first parameter is not self/cls
    METHOD = "method"  # one ``def`` whose first parameter is ``self`` or ``cls`` (dedented)
    OTHER = "other"  # anything else: a whole file, a class, a snippet, unparsable text


def code_shape(code: str) -> CodeShape:
    """The shape of ``code``: a lone (async) ``def`` is a method when its first parameter
    is ``self``/``cls``, else a function; anything else is ``other``.

    Read from the text, not from where the code came from: a dedented static method is
    a function to the model, and is counted as one.
    """
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError):
        return CodeShape.OTHER
    if len(body) != 1 or not isinstance(body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return CodeShape.OTHER
    params = [*body[0].args.posonlyargs, *body[0].args.args]
    if params and params[0].arg in _METHOD_FIRST_ARGS:
        return CodeShape.METHOD
    return CodeShape.FUNCTION


@dataclass(frozen=True, order=True)
class Cell:
    """One (source, rule, shape) combination."""

    source: str
    rule: str
    shape: str

    def label(self) -> str:
        return f"{self.source}/{self.rule}/{self.shape}"


def record_cell(record: NormalizedRecord) -> Cell:
    """The row's cell: source, the action's ``id`` (or :data:`NO_RULE`), the pre-code shape."""
    rule = str(record.action.get("id", NO_RULE)) if record.action else NO_RULE
    return Cell(record.source, rule, code_shape(record.pre_code).value)


@dataclass
class ShapeParity:
    """Rows per split and cell, and the held-out cells with no train row (``gaps``)."""

    counts: dict[str, dict[Cell, int]] = field(default_factory=dict)
    gaps: list[Cell] = field(default_factory=list)
    checked_sources: list[str] = field(default_factory=list)

    def heldout_cells(self) -> list[Cell]:
        """Cells with a dev or test row from a source that has train rows (what is checked)."""
        checked = set(self.checked_sources)
        cells = {
            c
            for s in (Split.DEV.value, Split.TEST.value)
            for c in self.counts.get(s, {})
            if c.source in checked
        }
        return sorted(cells)

    def shape_totals(self) -> dict[str, dict[str, int]]:
        """Rows per split and shape (all sources)."""
        out: dict[str, dict[str, int]] = {}
        for split, cells in self.counts.items():
            per: dict[str, int] = {}
            for cell, n in cells.items():
                per[cell.shape] = per.get(cell.shape, 0) + n
            out[split] = dict(sorted(per.items()))
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``cells`` maps ``source/rule/shape`` to rows per split."""
        labels = sorted({c for cells in self.counts.values() for c in cells})
        return {
            "cells": {
                c.label(): {s.value: self.counts.get(s.value, {}).get(c, 0) for s in Split}
                for c in labels
            },
            "shape_totals": self.shape_totals(),
            "checked_sources": self.checked_sources,
            "shape_gaps": [c.label() for c in self.gaps],
        }


def shape_parity(records: Iterable[NormalizedRecord]) -> ShapeParity:
    """Count rows per split and cell; a gap is a held-out cell (of a source with train rows)
    that has no train row — an edit shape the model is judged on but never trained on."""
    counts: dict[str, dict[Cell, int]] = {s.value: {} for s in Split}
    for r in records:
        per = counts[r.split.value]
        cell = record_cell(r)
        per[cell] = per.get(cell, 0) + 1
    report = ShapeParity(counts={k: dict(sorted(v.items())) for k, v in counts.items()})
    train = counts[Split.TRAIN.value]
    report.checked_sources = sorted({c.source for c in train})
    report.gaps = [c for c in report.heldout_cells() if train.get(c, 0) == 0]
    return report
