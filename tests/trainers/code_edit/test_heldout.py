"""Held-out code-edit sources come only from the stdlib files reserved from pretraining."""

from __future__ import annotations

from pathlib import Path

from trainers.code_corpus import is_reserved
from trainers.code_edit.heldout import module_reserved, reserved_units, train_units


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


def test_train_units_take_the_same_shapes_from_the_pretraining_part(tmp_path: Path) -> None:
    """Train codemods draw functions *and* methods (nested ones too) from the pretraining
    files, by the same rule as the held-out units; a text in both parts is held out."""
    (res,) = _names(True, 1)
    pre_a, pre_b = _names(False, 2)
    shared = "def shared(self):\n    return self.x\n"
    (tmp_path / res).write_text("class R:\n    " + shared.replace("\n    ", "\n        "))
    (tmp_path / pre_a).write_text(
        "def outer(x):\n    def inner(y):\n        return y\n    return inner(x)\n\n"
        "class C:\n    def method_p(self, y):\n        return y * 2\n"
    )
    (tmp_path / pre_b).write_text("class D:\n    " + shared.replace("\n    ", "\n        "))
    held = reserved_units(tmp_path)
    assert held == [shared]
    assert train_units(tmp_path, reserved=held) == [
        "def outer(x):\n    def inner(y):\n        return y\n    return inner(x)\n",
        "def inner(y):\n    return y\n",
        "def method_p(self, y):\n    return y * 2\n",
    ]


def test_module_reservation_is_the_file_partition() -> None:
    for mod in ("difflib", "heapq", "ipaddress", "statistics", "textwrap"):
        assert module_reserved(mod) == is_reserved(f"{mod}.py")
