"""Content-addressed judgement cache: (judge identity, prompt, response) → Judgement.

Judging is the slow, sometimes paid, part of a safety run; re-running a report
must not re-judge identical pairs.  The key includes the judge's ``identity``
(rubric, weights, training-data digest), so a changed judge never reuses stale
labels.  One append-only JSONL file per judge identity; appends happen under a
file lock so xdist workers can share it, and a torn last line (a crash mid-write)
is ignored on read rather than poisoning the cache.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from filelock import FileLock

from harness.atomic import durable_append
from harness.cachekey import CacheKey, cache_key, note_cache_use
from harness.judges.base import Judge, Judgement, judge_all
from harness.settings import get_settings

__all__ = ["CachedJudge", "default_judge_cache_dir", "judge_producer_key"]


def default_judge_cache_dir() -> Path:
    """``<cache_dir>/judgements`` (``HARNESS_CACHE_DIR``; see :mod:`harness.settings`)."""
    return get_settings().judgements_dir


def judge_producer_key(inner: Judge) -> CacheKey:
    """The code behind a judgement: the judge's own module and :mod:`harness.judges.base`.

    The judge's ``identity`` (rubric, weights, training-data digest) is the
    config; a judge defined outside a source file is keyed on its identity alone.
    """
    cls = type(inner)
    own = sys.modules.get(cls.__module__)
    modules: list[str | ModuleType] = ["harness.judges.base", "harness.judges.cache"]
    if own is not None and getattr(own, "__file__", None) and own.__name__ not in modules:
        modules.append(own)
    config = {"judge": f"{cls.__module__}.{cls.__qualname__}", "identity": inner.identity}
    return cache_key("judgement", modules=modules, config=config)


def _key(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()


class CachedJudge:
    """Wrap ``inner``; answer from the cache where possible, judge and append the rest."""

    def __init__(
        self, inner: Judge, cache_dir: Path | None = None, *, refresh: bool = False
    ) -> None:
        self.inner = inner
        self.refresh = refresh  # judge every pair again and append (the newest line wins)
        self._fresh: dict[str, Judgement] = {}  # judged by this instance (what refresh reuses)
        directory = cache_dir or default_judge_cache_dir()
        self.producer = judge_producer_key(inner)
        note_cache_use(self.producer, mode="refresh" if refresh else "use", label="judgements")
        ident = hashlib.sha256(f"{inner.identity}\0{self.producer.key}".encode()).hexdigest()[:24]
        self.path = directory / f"{ident}.jsonl"
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def weak(self) -> bool:
        return self.inner.weak

    def _load(self) -> dict[str, Judgement]:
        out: dict[str, Judgement] = {}
        if not self.path.is_file():
            return out
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    out[row["key"]] = Judgement.from_dict(row["judgement"])
                except (json.JSONDecodeError, KeyError, ValueError):
                    continue  # torn write from an interrupted run: re-judge that pair
        return out

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        known = dict(self._fresh) if self.refresh else self._load()
        keys = [_key(p, r) for p, r in pairs]
        todo = sorted({i for i, k in enumerate(keys) if k not in known}, key=keys.__getitem__)
        first: dict[str, int] = {}
        for i in todo:
            first.setdefault(keys[i], i)
        fresh_idx = sorted(first.values())
        self.misses += len(fresh_idx)
        self.hits += len(pairs) - len(fresh_idx)
        if fresh_idx:
            fresh = judge_all(self.inner, [pairs[i] for i in fresh_idx])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines = "".join(
                json.dumps({"key": keys[i], "judgement": j.to_dict()}, ensure_ascii=False) + "\n"
                for i, j in zip(fresh_idx, fresh, strict=True)
            )
            with FileLock(str(self.path) + ".lock"):
                durable_append(self.path, lines)
            for i, j in zip(fresh_idx, fresh, strict=True):
                known[keys[i]] = j
                self._fresh[keys[i]] = j
        return [known[k] for k in keys]
