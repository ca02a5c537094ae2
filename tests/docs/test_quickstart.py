"""docs/use-in-your-repo.md, executed: a fresh git repo is built from its snippets.

``<!-- file: PATH -->`` before a fenced block writes that file; ``<!-- run: N -->``
runs the block's command in the repo and expects exit code N; ``<!-- drop: FILE
NAME -->`` deletes test function NAME from FILE.  ``pytest`` and ``harness`` are
run with this interpreter, so the checkout under test is the one documented.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "use-in-your-repo.md"
_DIRECTIVE = re.compile(r"<!-- (file|run|drop): (.*?) -->")


def _steps(text: str) -> list[tuple[str, str, str]]:
    """(kind, argument, body) in document order; file/run take the next fenced block."""
    out: list[tuple[str, str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.fullmatch(lines[i].strip())
        i += 1
        if match is None:
            continue
        kind, arg = match.groups()
        body = ""
        if kind != "drop":
            while not lines[i].startswith("```"):
                i += 1
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            body = "\n".join(lines[i + 1 : end]) + "\n"
            i = end + 1
        out.append((kind, arg.strip(), body))
    return out


def _command(line: str) -> list[str]:
    words = shlex.split(line)
    if words[0] == "pytest":
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *words[1:]]
    if words[0] == "harness":
        return [sys.executable, "-c", "from harness.cli import main; main()", *words[1:]]
    raise AssertionError(f"unexpected command in the docs: {line}")


def _drop(path: Path, name: str) -> None:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"\n\n@pytest\.mark\.phase[^\n]*\n(?:@[^\n]*\n)*def {name}\(.*?(?=\n\n\n|\Z)", re.S
    )
    new, count = pattern.subn("", text)
    assert count == 1, f"could not drop {name} from {path}"
    path.write_text(new, encoding="utf-8")


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    steps = _steps(DOC.read_text(encoding="utf-8"))
    assert [k for k, _, _ in steps].count("run") >= 4, "the doc lost its run steps"
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kind, arg, body in steps:
        if kind == "file":
            path = tmp_path / arg.split(" ")[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        elif kind == "drop":
            file, name = arg.split()
            _drop(tmp_path / file, name)
        else:
            cmd = body.strip()
            done = subprocess.run(
                _command(cmd), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == int(arg), f"$ {cmd}\n{done.stdout}\n{done.stderr}"
    report = (tmp_path / "reports" / "pr-comment.md").read_text(encoding="utf-8")
    assert "- **ranker**: passed — 3 declared gate(s)" in report
    assert "98.3333 % each" in report  # the real one-sided level of α/m = 0.05/3
    missing = (tmp_path / "reports" / "missing" / "gate-report.md").read_text(encoding="utf-8")
    assert "| ranker | uplift | **MISSING** |" in missing
    partial = (tmp_path / "reports" / "partial" / "gate-report.md").read_text(encoding="utf-8")
    assert "not asked for (deselected): uplift" in partial, partial


def test_the_yaml_reference_is_generated_from_the_models() -> None:
    from harness.spec_cli import schema_markdown

    committed = (ROOT / "docs" / "gate-yaml.md").read_text(encoding="utf-8")
    assert committed == schema_markdown(), (
        "docs/gate-yaml.md is stale: run `harness spec schema --markdown > docs/gate-yaml.md`"
    )
