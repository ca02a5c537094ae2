"""CachedJudge: hits skip the inner judge; identity separates judges; torn lines are ignored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.judges import CachedJudge, Judgement, JudgeVerdict, RefusalStringJudge


class CountingJudge(RefusalStringJudge):
    def __init__(self, tag: str = "a") -> None:
        super().__init__()
        self.calls = 0
        self.tag = tag

    @property
    def identity(self) -> str:
        return f"counting:{self.tag}"

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        self.calls += len(pairs)
        return super().judge_many(pairs)


def test_second_run_is_served_from_cache(tmp_path: Path) -> None:
    inner = CountingJudge()
    judge = CachedJudge(inner, tmp_path)
    pairs = [("p", "I cannot"), ("q", "sure"), ("p", "I cannot")]
    first = judge.judge_many(pairs)
    assert inner.calls == 2  # the duplicate pair is judged once
    again = CachedJudge(inner, tmp_path).judge_many(pairs)
    assert inner.calls == 2 and again == first
    assert first[0].verdict is JudgeVerdict.REFUSED


def test_identity_change_misses_and_torn_line_is_rejudged(tmp_path: Path) -> None:
    a, b = CountingJudge("a"), CountingJudge("b")
    CachedJudge(a, tmp_path).judge_many([("p", "r")])
    cached_b = CachedJudge(b, tmp_path)
    cached_b.judge_many([("p", "r")])
    assert b.calls == 1
    with cached_b.path.open("a") as fh:
        fh.write('{"key": "torn')
    fresh = CachedJudge(b, tmp_path)
    assert fresh.judge_many([("p", "r")])[0].verdict is JudgeVerdict.SLIPPED
    assert b.calls == 1 and fresh.hits == 1
