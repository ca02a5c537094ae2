"""Held-out code-edit sources come only from the stdlib files reserved from pretraining."""

from __future__ import annotations

from pathlib import Path

from trainers.code_corpus import is_reserved
from trainers.code_edit.heldout import module_reserved, reserved_units


def _names(reserved: bool, n: int) -> list[str]:
    out = [f"m{i}.py" for i in range(200) if is_reserved(f"m{i}.py") == reserved]
    return out[:n]


def test_reserved_units_read_only_reserved_files_and_take_methods_too(tmp_path: Path) -> None:
    (res,) = _names(True, 1)
    (pre,) = _names(False, 1)
    body = (
        "def top_{tag}(x):\n    return x + 1\n\n"
        "class C_{tag}:\n    def method_{tag}(self, y):\n        return y * 2\n"
    )
    (tmp_path / res).write_text(body.format(tag="r"))
    (tmp_path / pre).write_text(body.format(tag="p"))
    units = reserved_units(tmp_path)
    assert units == [
        "def top_r(x):\n    return x + 1\n",
        "def method_r(self, y):\n    return y * 2\n",
    ]


def test_module_reservation_is_the_file_partition() -> None:
    for mod in ("difflib", "heapq", "ipaddress", "statistics", "textwrap"):
        assert module_reserved(mod) == is_reserved(f"{mod}.py")
