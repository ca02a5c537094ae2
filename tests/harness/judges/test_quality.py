"""Judge sensitivity/specificity on held-out labels, and the judge_train/judge_eval discipline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.data.safety import load_safety
from harness.errors import HarnessError
from harness.judges import (
    CachedJudge,
    ClassifierJudge,
    Judgement,
    JudgeVerdict,
    calibrate_judge,
    check_held_out,
    flags_refusal,
    flags_slip,
)
from harness.judges.quality import training_objectives


class _ByText:
    """Stub judge: 'slipped' when the response contains 'STEP', else 'refused'."""

    name = "stub-by-text"
    identity = "stub-by-text:v1"
    weak = False

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        return [
            Judgement(JudgeVerdict.SLIPPED if "STEP" in r else JudgeVerdict.REFUSED, 0.5, "stub")
            for _, r in pairs
        ]


class _Row:
    def __init__(self, i: int, prompt: str, response: str, label: int) -> None:
        self.id, self.prompt, self.response, self.label = f"r{i}", prompt, response, label


def test_counts_match_human_labels() -> None:
    rows = [
        _Row(0, "a", "STEP 1", 1),
        _Row(1, "b", "no", 1),
        _Row(2, "c", "no", 0),
        _Row(3, "d", "STEP 2", 0),
        _Row(4, "e", "no", 0),
    ]
    cal = calibrate_judge(_ByText(), rows, flags=flags_slip, set_name="demo", event="slip")
    c = cal.counts
    assert (c.true_pos, c.positives, c.true_neg, c.negatives) == (1, 2, 2, 3)
    assert [o.value for o in cal.outcomes] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert [o.raw["label"] for o in cal.outcomes] == [1, 1, 0, 0, 0]
    assert cal.to_dict()["sensitivity"] == 0.5
    # a different event definition gives different counts on the same rows
    ref = calibrate_judge(_ByText(), rows, flags=flags_refusal, set_name="demo", event="refused")
    assert ref.counts.true_pos == 1 and ref.counts.true_neg == 1


def test_needs_both_labels_and_rows() -> None:
    with pytest.raises(HarnessError, match="is empty"):
        calibrate_judge(_ByText(), [], flags=flags_slip, set_name="demo", event="slip")
    only_pos = [_Row(0, "a", "x", 1)]
    with pytest.raises(HarnessError, match="1 event and 0 non-event rows"):
        calibrate_judge(_ByText(), only_pos, flags=flags_slip, set_name="demo", event="slip")


def test_flag_definitions_match_the_gate_outcomes() -> None:
    assert flags_slip(JudgeVerdict.SLIPPED) and flags_slip(JudgeVerdict.AMBIGUOUS)
    assert not flags_slip(JudgeVerdict.REFUSED) and not flags_slip(JudgeVerdict.ANSWERED_SAFE)
    assert flags_refusal(JudgeVerdict.REFUSED)
    assert not any(flags_refusal(v) for v in JudgeVerdict if v is not JudgeVerdict.REFUSED)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> ClassifierJudge:
    data = load_safety(source="fixtures")
    return ClassifierJudge.train(data.judge_train, cache_dir=tmp_path_factory.mktemp("clf"))


def test_judge_is_never_calibrated_on_its_training_rows(
    trained: ClassifierJudge, tmp_path: Path
) -> None:
    data = load_safety(source="fixtures")
    cached = CachedJudge(trained, tmp_path)
    assert training_objectives(cached) == training_objectives(trained) != frozenset()
    with pytest.raises(HarnessError, match=r"cannot be calibrated on 'judge_train'.*never on"):
        calibrate_judge(
            cached, data.judge_train, flags=flags_slip, set_name="judge_train", event="slip"
        )
    # the held-out sets pass the check and give real counts
    check_held_out(cached, data.refusal_eval, set_name="refusal_eval")
    cal = calibrate_judge(
        cached, data.judge_eval, flags=flags_slip, set_name="judge_eval", event="slip"
    )
    assert cal.counts.positives + cal.counts.negatives == len(data.judge_eval)


def test_a_single_leaked_objective_is_caught(trained: ClassifierJudge) -> None:
    data = load_safety(source="fixtures")
    leaked = [*data.judge_eval[:5], data.judge_train[0]]
    with pytest.raises(HarnessError, match=r"1 of its 6 rows share an objective"):
        check_held_out(trained, leaked, set_name="mixed")


def test_fit_cache_reload_keeps_training_objectives(tmp_path: Path) -> None:
    data = load_safety(source="fixtures")
    first = ClassifierJudge.train(data.judge_train, cache_dir=tmp_path)
    again = ClassifierJudge.train(data.judge_train, cache_dir=tmp_path)  # from the pickle
    assert again.train_objectives == first.train_objectives
    assert len(first.train_objectives) == len(
        {r.prompt.casefold().strip() for r in data.judge_train}
    )
