"""The phase suites' options the docs name are accepted by ``pytest suites`` (what
``harness run`` executes): an option declared only in a nested ``suites/<phase>/conftest.py``
was rejected as "unrecognized arguments" there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PHASE_OPTION = re.compile(r"--(?:codegen|compression)-[a-z][a-z-]*[a-z]")


def test_every_documented_phase_option_is_registered_for_pytest_suites() -> None:
    documented = {
        m.group(0)
        for doc in [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
        for m in _PHASE_OPTION.finditer(doc.read_text(encoding="utf-8"))
    }
    assert "--compression-task" in documented  # the scan finds the docs' options
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    registered = set(re.findall(r"^\s+(--[a-z][a-z-]*)", proc.stdout, re.MULTILINE))
    assert documented <= registered, sorted(documented - registered)
