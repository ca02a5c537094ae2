"""One cache key for every cached artifact: the code, libraries, config, data and seed that made it.

A cache entry is only as trustworthy as its key.  Hand-bumped version numbers
(``_KEY_VERSION = 1``) go stale the first time someone edits a producing module
and forgets to bump; evidence then stamps the *current* code digest on numbers
the old code produced.  :func:`cache_key` instead digests

* the **source** of the modules that produce the artifact, read from disk
  (a package means every ``.py`` file under it), so any edit is a new key;
* the installed **versions** of the libraries that shape it (``None`` when not
  installed, which is itself part of the key);
* the **config** (any JSON-able value, pydantic model or dataclass),
  the **input data digest** and the **seed**.

It returns a :class:`CacheKey`: ``key`` (sha256 hex) names the entry, and
:meth:`CacheKey.record` is the JSON that evidence stores so a reader can see
what the cached numbers were computed from.  Editing a module that is not
listed does not change the key — list every module whose behaviour reaches
the artifact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError

__all__ = [
    "CacheKey",
    "cache_key",
    "caches_used",
    "canonical_config",
    "digest_paths",
    "library_versions",
    "note_cache_use",
    "note_training_run",
    "refresh_requested",
    "reset_provenance",
    "run_stamp",
    "source_digest",
    "training_runs_used",
]

#: pip distribution names for import names that differ.
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "scikit_learn": "scikit-learn"}


class CacheKey(BaseModel):
    """A computed cache key and what went into it (JSON-able for evidence)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    key: str
    code: dict[str, str]
    libraries: dict[str, str | None]
    config_digest: str
    data: str | None = None
    seed: int | None = None

    @property
    def short(self) -> str:
        """The first 24 hex digits: enough for a file name, still collision-safe here."""
        return self.key[:24]

    def record(self) -> dict[str, Any]:
        """What evidence stores under ``extra["cache"][kind]``."""
        return self.model_dump(mode="json")


def cache_key(
    kind: str,
    *,
    modules: Sequence[str | ModuleType],
    libraries: Sequence[str] = (),
    config: Any = None,
    data: str | None = None,
    seed: int | None = None,
) -> CacheKey:
    """The key of a ``kind`` artifact made by ``modules`` under ``libraries`` from config/data/seed.

    ``modules`` are importable names (``"harness.backends.hf"``) or module
    objects; a package contributes every ``.py`` file below it.  ``data`` is a
    digest the caller computed of the input data (see :func:`digest_paths`).
    """
    if not modules:
        raise HarnessError(f"cache_key({kind!r}): name at least one producing module")
    code = source_digest(modules)
    libs = library_versions(libraries)
    cfg = hashlib.sha256(canonical_config(config).encode()).hexdigest()
    payload = json.dumps(
        {"kind": kind, "code": code, "libs": libs, "config": cfg, "data": data, "seed": seed},
        sort_keys=True,
    )
    key = hashlib.sha256(payload.encode()).hexdigest()
    return CacheKey(
        kind=kind, key=key, code=code, libraries=libs, config_digest=cfg, data=data, seed=seed
    )


def source_digest(modules: Iterable[str | ModuleType]) -> dict[str, str]:
    """``{module name: sha256 of its source files}``, read from disk now (edits count at once)."""
    out: dict[str, str] = {}
    for mod in modules:
        name = mod if isinstance(mod, str) else mod.__name__
        base, files = _module_files(name) if isinstance(mod, str) else _object_files(mod)
        h = hashlib.sha256()
        for file in files:
            h.update(file.relative_to(base).as_posix().encode() + b"\0")
            h.update(file.read_bytes() + b"\0")
        out[name] = h.hexdigest()
    return dict(sorted(out.items()))


def _module_files(name: str) -> tuple[Path, list[Path]]:
    """(base dir, the ``.py`` files of module ``name``; all of them, recursively, for a package)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise HarnessError(f"cache key: cannot locate module {name!r} ({exc})") from exc
    if spec is None or spec.origin is None or not spec.has_location:
        raise HarnessError(
            f"cache key: module {name!r} has no source file; list the module that produces "
            "the artifact by its importable name (e.g. 'harness.backends.hf')"
        )
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every .py file below it
        root = origin.parent
        return root, sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return origin.parent, [origin]


def _object_files(mod: ModuleType) -> tuple[Path, list[Path]]:
    """Like :func:`_module_files` for an imported module (works for test-local modules too)."""
    file = getattr(mod, "__file__", None)
    if not file:
        raise HarnessError(f"cache key: module {mod.__name__!r} has no source file")
    origin = Path(file)
    if getattr(mod, "__path__", None):
        root = origin.parent
        return root, sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return origin.parent, [origin]


def library_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of ``names`` (import or distribution names); ``None`` if absent."""
    out: dict[str, str | None] = {}
    for name in names:
        dist = _DISTRIBUTIONS.get(name, name)
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return dict(sorted(out.items()))


def canonical_config(config: Any) -> str:
    """Canonical JSON of a config: pydantic models, dataclasses, enums, paths, nested mappings."""
    return json.dumps(_plain(config), sort_keys=True, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    return value


def digest_paths(paths: Iterable[str | Path]) -> str:
    """sha256 over files (and every file under directories), with their relative names."""
    h = hashlib.sha256()
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            files = [p]
        else:
            raise HarnessError(f"cache key: data path {p} does not exist; fetch or build it first")
        for f in files:
            h.update(f.relative_to(p if p.is_dir() else p.parent).as_posix().encode() + b"\0")
            with f.open("rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            h.update(b"\0")
    return "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------- --no-cache


def refresh_requested(built_by_run: str | None) -> bool:
    """Must a cache entry built by run ``built_by_run`` be recomputed now?

    True when ``--no-cache`` is on (:attr:`harness.settings.Settings.no_cache`)
    unless the entry was already rebuilt by *this* run (same ``run_id``): the
    phase suites share one ``run_id`` across xdist workers, so the first worker
    recomputes and the others reuse its fresh entry instead of each rebuilding it.
    """
    from harness.settings import get_settings

    settings = get_settings()
    if not settings.no_cache:
        return False
    return settings.run_id is None or built_by_run != settings.run_id


def run_stamp() -> str | None:
    """The ``run_id`` a freshly built entry records (compared by :func:`refresh_requested`)."""
    from harness.settings import get_settings

    return get_settings().run_id


# --------------------------------------------------------------------------- evidence

_USED: dict[str, dict[str, Any]] = {}


def note_cache_use(key: CacheKey, *, mode: str = "use", label: str | None = None) -> None:
    """Remember that this process consulted the cache entry ``key`` (``mode``: use/refresh/off).

    :class:`harness.gate.Gate` copies :func:`caches_used` into every evidence
    record as ``extra["caches"]``, so a verdict names the cache keys of the
    artifacts it may have been computed from.
    """
    entry = {**key.record(), "mode": mode, "label": label or key.kind}
    _USED[f"{entry['label']}:{key.short}"] = entry


def caches_used() -> dict[str, dict[str, Any]]:
    """Every cache key noted in this process so far (``label:short key`` → record); a copy.

    Session fixtures are shared by the phases an xdist worker runs, so this is
    the set of caches the process had opened when the gate decided: it contains
    the ones that fed the gate, and may contain others.
    """
    return {name: dict(entry) for name, entry in sorted(_USED.items())}


_RUNS: dict[str, dict[str, Any]] = {}


def note_training_run(label: str, record: Mapping[str, Any]) -> None:
    """Remember the W&B run (``trainers.tracking.RunTracker.record()``) behind an artifact.

    A cached artifact notes the run that originally trained it.  Evidence
    records carry :func:`training_runs_used` as ``extra["training_runs"]``.
    """
    _RUNS[label] = dict(record)


def training_runs_used() -> dict[str, dict[str, Any]]:
    """Every training run noted in this process (label → run record); a copy."""
    return {name: dict(entry) for name, entry in sorted(_RUNS.items())}


def reset_provenance() -> None:
    """Forget noted caches and training runs (a new session in the same process; tests)."""
    _USED.clear()
    _RUNS.clear()
