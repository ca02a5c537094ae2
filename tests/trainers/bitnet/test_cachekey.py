"""The compression run's cache key follows the code that makes its models, and nothing else.

Editing the decode-speed timing (``speed.py``, ``speed_run.py``) must not retrain the
compression models; editing the QAT trainer must.  Mirrors the SFT test in
tests/harness/test_cachekey.py: the key is computed in a temporary copy of the project.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from trainers.bitnet.pipeline import PRODUCER_MODULES
from trainers.bitnet.speed_run import SPEED_MODULES

ROOT = Path(__file__).resolve().parents[3]

# one process computes all three keys (importing torch once): edits happen between them
_KEYS_AFTER_EDITS = """\
import sys
from pathlib import Path
from trainers.bitnet.pipeline import CompressionRunConfig

def append(path):
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write("\\n# an edit\\n")

cfg = CompressionRunConfig()
print(cfg.digest())
append("trainers/bitnet/speed.py")
append("trainers/bitnet/speed_run.py")
print(cfg.digest())
append("trainers/bitnet/trainer.py")
print(cfg.digest())
"""


def test_editing_speed_code_keeps_the_key_and_editing_the_trainer_changes_it(
    project_copy: Callable[[str], str],
) -> None:
    stdout = project_copy(_KEYS_AFTER_EDITS)
    original, after_speed_edit, after_trainer_edit = stdout.split()
    assert after_speed_edit == original  # timing code: the trained models are reused
    assert after_trainer_edit != original  # QAT code: the models are retrained


def _bitnet_imports(module: str) -> set[str]:
    """``trainers.bitnet`` modules ``module`` imports at any level of its source."""
    path = ROOT / (module.replace(".", "/") + ".py")
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "trainers.bitnet":
                out |= {f"trainers.bitnet.{alias.name}" for alias in node.names}
            elif node.module.startswith("trainers.bitnet."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trainers.bitnet.")}
    return out


def test_every_bitnet_module_the_run_imports_is_a_producer() -> None:
    """A module the run reaches but the key leaves out would let its edits go unseen."""
    seen: set[str] = set()
    todo = ["trainers.bitnet.pipeline"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_bitnet_imports(module))
    assert seen <= set(PRODUCER_MODULES), sorted(seen - set(PRODUCER_MODULES))
    assert "harness.data.arithmetic" in PRODUCER_MODULES  # the task's data generator
    # the timing modules are keyed on their own and never retrain the models
    assert not {"trainers.bitnet.speed", "trainers.bitnet.speed_run"} & set(PRODUCER_MODULES)
    assert {"trainers.bitnet.speed", "trainers.bitnet.speed_run"} <= set(SPEED_MODULES)
