"""Held-out code-edit rows against a pretraining corpus: 13-gram overlap per record."""

from __future__ import annotations

from harness.data.code_edit.pretrain_overlap import overlapping_ids, pretrain_overlap
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.data.contamination import corpus_digest
from harness.evaluators.code_edit import pretrain_overlap_outcomes

SEEN = '''def clamp(value, low, high):
    """Return value limited to the closed interval between low and high inclusive."""
    if value < low:
        return low
    if value > high:
        return high
    return value
'''
UNSEEN = '''def window_pairs(items):
    """Yield consecutive pairs of items from the sequence given as the only argument."""
    for index in range(len(items) - 1):
        yield items[index], items[index + 1]
'''


def _rec(i: str, split: Split, pre: str, post: str) -> NormalizedRecord:
    return NormalizedRecord.build(
        id=i,
        source="s",
        language="python",
        instruction="x",
        pre_code=pre,
        post_code=post,
        split=split,
    )


def test_a_bug_fix_of_a_pretrained_function_overlaps_and_an_unseen_one_does_not() -> None:
    rows = [
        _rec("seen", Split.TEST, SEEN.replace("<", "<="), SEEN),
        _rec("unseen", Split.DEV, UNSEEN.replace("- 1", "- 2"), UNSEEN),
        _rec("train", Split.TRAIN, SEEN.replace(">", ">="), SEEN),  # train may overlap
    ]
    report = pretrain_overlap(rows, [SEEN, "print('other')\n"])
    assert [r.record_id for r in report.records] == ["seen", "unseen"]
    assert overlapping_ids(report) == ["seen"]
    seen = report.records[0]
    assert seen.matched > 0 and seen.example and seen.split == "test"
    assert report.corpus_docs == 2
    assert report.corpus_digest == corpus_digest([SEEN, "print('other')\n"])
    assert report.summary()["overlapping_records"] == 1


def test_pre_code_alone_is_enough_to_overlap() -> None:
    """An instruction-following edit *to* new code still starts from pretrained text."""
    rows = [_rec("pre", Split.TEST, UNSEEN, "def f():\n    return 1\n")]
    assert overlapping_ids(pretrain_overlap(rows, [UNSEEN])) == ["pre"]


def test_outcomes_count_overlapping_heldout_rows() -> None:
    rows = [
        _rec("seen", Split.TEST, SEEN.replace("<", "<="), SEEN),
        _rec("unseen", Split.TEST, UNSEEN.replace("- 1", "- 2"), UNSEEN),
    ]
    outcomes, report = pretrain_overlap_outcomes(rows, iter([SEEN]))
    assert {o.item_id: o.value for o in outcomes} == {"seen": 1.0, "unseen": 0.0}
    assert report.corpus_docs == 1
