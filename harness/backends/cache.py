"""Content-addressed on-disk generation cache (sqlite, WAL mode, safe across xdist workers).

An entry's key combines two digests:

* the **producer key** (:func:`producer_key`, built by :func:`harness.cachekey.cache_key`):
  the source of the backend module that generates (for the HF backend that is
  the sampler), of this module and :mod:`harness.backends.base`, and the
  installed torch / transformers / tokenizers / accelerate / vllm versions — so
  editing the sampling code or upgrading a library is a miss, with no version
  number to remember to bump;
* the **request key** (:func:`generation_key`): the backend's *full*
  :class:`ModelIdentity` (weights, tokenizer and chat-template digests, dtype,
  ...), the request content (messages/prompt/tools) and every sampling
  parameter including the seed.  The replay lane keys its recordings on this
  part alone: a recording is a contract about requests, not about our code.

Any change to any of them is a miss, so a cache hit can never hand back an
answer to a different question or one computed by different code.  The request
id is not part of the key.

sqlite is used rather than one file per entry because many pytest-xdist
workers read and write concurrently: WAL gives concurrent readers plus one
writer, and ``busy_timeout`` makes writers wait instead of failing.  Every write
is one committed transaction, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    ModelIdentity,
    canonical_json,
    check_one_to_one,
    sha256_hex,
)
from harness.cachekey import CacheKey, cache_key, note_cache_use
from harness.errors import BackendError

__all__ = [
    "GENERATION_LIBRARIES",
    "CacheMode",
    "CachingGenerator",
    "GenerationCache",
    "generation_key",
    "producer_key",
]

#: Schema of the request-key payload below (not a code version: code is in the producer key).
#: Changing it would invalidate every replay recording, so it stays fixed.
_REQUEST_SCHEMA = 1
#: Libraries whose versions change what a local backend generates.
GENERATION_LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate", "vllm")
_CACHE_MODULES = ("harness.backends.base", "harness.backends.cache")
_DB_NAME = "generations.sqlite3"


class CacheMode(StrEnum):
    """``use``: read and write; ``refresh``: regenerate and overwrite; ``off``: bypass."""

    USE = "use"
    REFRESH = "refresh"
    OFF = "off"


def generation_key(identity: ModelIdentity, request: GenerationRequest) -> str:
    """sha256 of (request schema, full model identity, request content, sampling params + seed)."""
    payload = {
        "v": _REQUEST_SCHEMA,
        "model": identity.model_dump(mode="json"),
        "request": request.content_dict(),
        "sampling": request.sampling.key_dict(),
    }
    return sha256_hex(canonical_json(payload))


def producer_key(inner: Generator) -> CacheKey:
    """The code and library part of a generation's key for backend ``inner``.

    The backend's own module is digested (a backend may name more in a
    ``producer_modules`` attribute, e.g. a helper module holding its sampler).
    """
    cls = type(inner)
    own = sys.modules.get(cls.__module__)
    extra: Sequence[str] = getattr(inner, "producer_modules", ())
    modules: list[str | ModuleType] = [*_CACHE_MODULES, *extra]
    # a backend defined in a script (``python -c``) has no source file to digest
    if own is not None and getattr(own, "__file__", None) and own.__name__ not in modules:
        modules.append(own)
    return cache_key(
        "generation",
        modules=modules,
        libraries=GENERATION_LIBRARIES,
        config={
            "backend": f"{cls.__module__}.{cls.__qualname__}",
            "identity": inner.identity.model_dump(mode="json"),
        },
    )


def _entry_key(producer: CacheKey, identity: ModelIdentity, request: GenerationRequest) -> str:
    return sha256_hex(f"{producer.key}:{generation_key(identity, request)}".encode())


class GenerationCache:
    """A sqlite file ``<cache_dir>/generations.sqlite3`` mapping key → Generation JSON."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.dir = Path(cache_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"generation cache: cannot create {self.dir}: {exc}; pass a writable "
                "--cache-dir or use --no-cache"
            ) from exc
        self.path = self.dir / _DB_NAME
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS generations ("
                " key TEXT PRIMARY KEY, model_digest TEXT NOT NULL, body TEXT NOT NULL,"
                " created REAL NOT NULL)"
            )
            self._conn.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        """Entries found for ``keys``; unreadable entries count as misses (they get rewritten)."""
        found: dict[str, Generation] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(
                    f"SELECT key, body FROM generations WHERE key IN ({marks})", part
                ).fetchall()
                for key, body in rows:
                    try:
                        found[key] = Generation.model_validate_json(body)
                    except ValidationError:
                        continue
        return found

    def put_many(self, items: Sequence[tuple[str, Generation]]) -> None:
        now = time.time()
        rows = [(k, g.model.digest(), g.model_dump_json(), now) for k, g in items]
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO generations (key, model_digest, body, created) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachingGenerator:
    """Wrap any :class:`Generator` with the on-disk cache.

    Hits come back with ``cached=True`` and the caller's request id; misses are
    generated in one batch by the inner backend and stored.
    """

    def __init__(
        self, inner: Generator, cache_dir: Path | str, *, mode: CacheMode | str = CacheMode.USE
    ) -> None:
        self.inner = inner
        try:
            self.mode = CacheMode(mode)
        except ValueError:
            raise BackendError(f"cache mode {mode!r} is not one of use, refresh, off") from None
        self.cache = None if self.mode is CacheMode.OFF else GenerationCache(cache_dir)
        self.hits = 0
        self.misses = 0
        self._producer: CacheKey | None = None

    @property
    def producer(self) -> CacheKey:
        """The producer key, computed at first use (a remote backend discovers its identity
        lazily, so it is not asked before the first request) and noted for evidence."""
        if self._producer is None:
            self._producer = producer_key(self.inner)
            label = f"generation/{self.inner.identity.name}"
            note_cache_use(self._producer, mode=self.mode.value, label=label)
        return self._producer

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if self.cache is None:
            return self.inner.generate(requests)
        producer = self.producer
        identity = self.inner.identity
        keys = [_entry_key(producer, identity, r) for r in requests]
        found = {} if self.mode is CacheMode.REFRESH else self.cache.get_many(keys)
        results: list[Generation | None] = []
        missing: list[int] = []
        for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
            hit = found.get(key)
            if hit is None:
                results.append(None)
                missing.append(i)
            else:
                results.append(
                    hit.model_copy(update={"request_id": req.request_id, "cached": True})
                )
        self.hits += len(requests) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.generate([requests[i] for i in missing])
            check_one_to_one([requests[i] for i in missing], fresh, backend="cache(inner)")
            self.cache.put_many([(keys[i], g) for i, g in zip(missing, fresh, strict=True)])
            for i, g in zip(missing, fresh, strict=True):
                results[i] = g
        out = [g for g in results if g is not None]
        check_one_to_one(requests, out, backend="cache")
        return out
