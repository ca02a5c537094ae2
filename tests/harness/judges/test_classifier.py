"""The trained classifier judge on the committed (real) fixture rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.safety import load_safety
from harness.judges import ClassifierConfig, ClassifierJudge, JudgeVerdict
from harness.judges.classifier import looks_like_refusal


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClassifierJudge, Path]:
    data = load_safety(source="fixtures")
    cache = tmp_path_factory.mktemp("clf")
    return ClassifierJudge.train(data.judge_train, cache_dir=cache), cache


def test_training_reports_grouped_cv(trained: tuple[ClassifierJudge, Path]) -> None:
    judge, _ = trained
    cv = judge.harm_cv
    assert cv.n == len(load_safety(source="fixtures").judge_train)
    assert len(cv.fold_accuracies) == 5 and 0.0 <= cv.accuracy <= 1.0
    assert cv.groups < cv.n  # grouped by objective: several responses per objective


def test_verdicts_follow_score_band_and_refusal_rule(trained: tuple[ClassifierJudge, Path]) -> None:
    judge, _ = trained
    data = load_safety(source="fixtures")
    pairs = [(r.prompt, r.response) for r in data.judge_eval]
    out = judge.judge_many(pairs)
    lo, hi = judge.config.ambiguous_band
    for (_, response), j in zip(pairs, out, strict=True):
        assert 0.0 <= j.score <= 1.0
        if j.score >= hi:
            assert j.verdict is JudgeVerdict.SLIPPED
        elif j.score > lo:
            assert j.verdict is JudgeVerdict.AMBIGUOUS
        else:
            expected = (
                JudgeVerdict.REFUSED
                if looks_like_refusal(response)
                else (JudgeVerdict.ANSWERED_SAFE)
            )
            assert j.verdict is expected
    assert judge.judge_many([]) == []


def test_refusal_rule_normalises_apostrophes() -> None:
    assert looks_like_refusal("I can\u2019t help with that")
    assert looks_like_refusal("Sorry, but I cannot do this.")
    assert not looks_like_refusal("Here is a recipe for bread.")
    assert not looks_like_refusal("x" * 400 + " I cannot")  # only the start counts


def test_fit_is_cached_and_identity_tracks_config(trained: tuple[ClassifierJudge, Path]) -> None:
    judge, cache = trained
    data = load_safety(source="fixtures")
    again = ClassifierJudge.train(data.judge_train, cache_dir=cache)
    pairs = [(r.prompt, r.response) for r in data.judge_eval[:10]]
    assert [j.score for j in again.judge_many(pairs)] == [j.score for j in judge.judge_many(pairs)]
    assert again.identity == judge.identity
    assert len(list(cache.glob("classifier-*.pkl"))) == 1
    other = ClassifierJudge.train(
        data.judge_train[:60], config=ClassifierConfig(C=1.0), cache_dir=cache
    )
    assert other.identity != judge.identity


def test_train_without_rows_is_an_error() -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="harness data fetch safety"):
        ClassifierJudge.train([])


def test_scikit_learn_upgrade_invalidates_fit_cache(
    trained: tuple[ClassifierJudge, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.cachekey as ck

    judge, cache = trained
    before = set(cache.glob("classifier-*.pkl"))
    real = ck.library_versions

    def upgraded(names: object) -> dict[str, str | None]:
        out = real(names)  # type: ignore[arg-type]
        return {**out, "scikit-learn": "99.0"} if "scikit-learn" in out else out

    monkeypatch.setattr(ck, "library_versions", upgraded)
    rows = load_safety(source="fixtures").judge_train
    bumped = ClassifierJudge.train(rows, cache_dir=cache)
    assert set(cache.glob("classifier-*.pkl")) - before  # a new fit, not the stale pickle
    assert bumped.identity != judge.identity


def test_refresh_refits_and_records_the_key(trained: tuple[ClassifierJudge, Path]) -> None:
    from harness.cachekey import caches_used

    judge, cache = trained
    rows = load_safety(source="fixtures").judge_train
    again = ClassifierJudge.train(rows, cache_dir=cache, refresh=True)
    assert again.identity == judge.identity
    used = [v for v in caches_used().values() if v["kind"] == "judge-classifier"]
    assert any(v["key"] == judge.cache_key for v in used)
    assert "harness.judges.classifier" in used[0]["code"]
    assert "scikit-learn" in used[0]["libraries"]
