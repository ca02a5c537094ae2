"""docs/architecture.md names only files and directories that exist.

The module table and the deviations list say which module has which job; a module moved
or renamed without the doc following would make the map lie.  Paths are the backticked
repo-relative ones (``harness/...``, ``trainers/...``, ...); placeholders (``<phase>``)
and globs are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPS = "harness|trainers|sandbox|suites|gates|docs|tests|fixtures|benchmarks|scripts"
PATH = re.compile(rf"`((?:{TOPS})/[^`\s]*)`")


def _named_paths() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    found = {m.group(1).rstrip("/.,") for m in PATH.finditer(text)}
    return sorted(p for p in found if not any(c in p for c in "<>*{}"))


def test_architecture_names_existing_paths() -> None:
    paths = _named_paths()
    assert len(paths) > 40, "the path pattern no longer matches the doc's module table"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, (
        f"docs/architecture.md names paths that do not exist: {missing}; update the doc to "
        "where the module lives now (or restore the file)"
    )
