"""The cache key follows the producing code, libraries, config, data and seed — nothing else."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.cachekey import (
    cache_key,
    canonical_config,
    digest_paths,
    library_versions,
    source_digest,
)
from harness.errors import HarnessError


@pytest.fixture
def pkg(tmp_path: Path) -> Iterator[Path]:
    """A temporary copy of a small package: ``kpkg.producer`` and ``kpkg.bystander``."""
    root = tmp_path / "src"
    package = root / "kpkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "producer.py").write_text("def make():\n    return 1\n")
    (package / "bystander.py").write_text("X = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("Y = 2\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield package
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "kpkg" or m.startswith("kpkg.")]:
            del sys.modules[name]


def _key(**kw: object) -> str:
    base: dict[str, object] = {"modules": ["kpkg.producer"], "config": {"a": 1}, "seed": 0}
    base.update(kw)
    return cache_key("test", **base).key  # type: ignore[arg-type]


def test_editing_the_producing_module_changes_the_key(pkg: Path) -> None:
    before = _key()
    (pkg / "producer.py").write_text("def make():\n    return 2\n")
    assert _key() != before


def test_editing_an_unrelated_module_keeps_the_key(pkg: Path) -> None:
    before = _key()
    (pkg / "bystander.py").write_text("X = 2  # edited\n")
    (pkg / "sub" / "deep.py").write_text("Y = 3\n")
    assert _key() == before


def test_a_package_covers_every_file_below_it(pkg: Path) -> None:
    before = _key(modules=["kpkg"])
    (pkg / "sub" / "deep.py").write_text("Y = 3\n")
    assert _key(modules=["kpkg"]) != before
    (pkg / "sub" / "new.py").write_text("Z = 0\n")
    assert len({before, _key(modules=["kpkg"])}) == 2


def test_module_objects_and_names_agree(pkg: Path) -> None:
    mod = importlib.import_module("kpkg.producer")
    assert source_digest([mod]) == source_digest(["kpkg.producer"])


def test_config_data_seed_and_libraries_are_in_the_key(pkg: Path) -> None:
    base = _key()
    assert _key(config={"a": 2}) != base
    assert _key(data="sha256:1") != _key(data="sha256:2")
    assert _key(seed=1) != base
    assert _key(libraries=["numpy"]) != base
    assert _key(config={"a": 1}) == base


def test_record_names_what_went_into_the_key(pkg: Path) -> None:
    key = cache_key("thing", modules=["kpkg.producer"], libraries=["numpy", "sklearn"], seed=3)
    rec = key.record()
    assert rec["kind"] == "thing" and rec["key"] == key.key and rec["seed"] == 3
    assert set(rec["code"]) == {"kpkg.producer"}
    import numpy

    assert rec["libraries"]["numpy"] == numpy.__version__
    assert "scikit-learn" in rec["libraries"]  # import name mapped to the distribution
    assert len(key.short) == 24


def test_missing_library_is_recorded_as_none() -> None:
    assert library_versions(["surely-not-installed-dist"]) == {"surely-not-installed-dist": None}


def test_unknown_module_names_the_problem() -> None:
    with pytest.raises(HarnessError, match="no_such_module_xyz"):
        cache_key("x", modules=["no_such_module_xyz"])
    with pytest.raises(HarnessError, match="at least one producing module"):
        cache_key("x", modules=[])


def test_canonical_config_is_order_free_and_understands_dataclasses() -> None:
    @dataclasses.dataclass
    class Cfg:
        lr: float
        path: Path

    assert canonical_config({"b": 1, "a": 2}) == canonical_config({"a": 2, "b": 1})
    assert canonical_config(Cfg(0.1, Path("/x"))) == canonical_config({"lr": 0.1, "path": "/x"})


def test_digest_paths_follows_content_and_names(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("1")
    first = digest_paths([tmp_path / "d"])
    (tmp_path / "d" / "a.txt").write_text("2")
    assert digest_paths([tmp_path / "d"]) != first
    with pytest.raises(HarnessError, match="does not exist"):
        digest_paths([tmp_path / "missing"])


_KEY_OF_SFT = (
    "from trainers.sft import SFTConfigSpec, SFTExample\n"
    "spec = SFTConfigSpec(base_model_dir='b', examples=(SFTExample([1, 2], [0, 1]),))\n"
    "print(spec.cache_key('sha256:base').key)\n"
)


def test_real_producer_edited_in_a_temporary_copy(
    tmp_path: Path, project_copy: Callable[[str], str]
) -> None:
    """The SFT checkpoint key, in a copy of the project: editing ``trainers/sft.py`` changes it,
    editing a module that does not shape the weights (``trainers/tracking.py``) does not."""

    def key() -> str:
        return project_copy(_KEY_OF_SFT).strip()

    before = key()
    with (tmp_path / "trainers" / "tracking.py").open("a") as fh:
        fh.write("\n# an edit to logging only\n")
    assert key() == before
    with (tmp_path / "trainers" / "sft.py").open("a") as fh:
        fh.write("\n# an edit to the trainer\n")
    assert key() != before
