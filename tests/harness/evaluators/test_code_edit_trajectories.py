"""The sandbox filter keeps only verified teacher steps and says why it dropped the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.data.code_edit.schema import NormalizedRecord
from harness.data.code_edit.trajectory import SRLStep, TeacherStep, read_jsonl_rows
from harness.evaluators.code_edit_trajectories import filter_trajectories, step_outcomes
from sandbox.base import Sandbox

PRE = "def add(a, b):\n    return a - b\n"
POST = "def add(a, b):\n    return a + b\n"
GOOD = "id: r\nlanguage: python\nrule: {pattern: $A - $B}\nfix: $A + $B\n"
WRONG = "id: r\nlanguage: python\nrule: {pattern: $A - $B}\nfix: $A * $B\n"


def _rec(rid: str, split: str, source: str = "src-a") -> NormalizedRecord:
    return NormalizedRecord.build(
        id=rid,
        source=source,
        language="python",
        instruction="fix the sum",
        pre_code=PRE,
        post_code=POST,
        split=split,
    )


def _step(rec: NormalizedRecord, text: str, n: int, record_id: str | None = None) -> str:
    return TeacherStep(
        id=f"t/{rec.id}/{n}",
        record_id=record_id or rec.id,
        source=rec.source,
        split=rec.split,
        teacher="t",
        language="python",
        instruction=rec.instruction,
        pre_code=rec.pre_code,
        action_text=text,
    ).model_dump_json()


@pytest.fixture(scope="module")
def astgrep_box() -> Iterator[Sandbox]:
    from sandbox.astgrep_image import ensure_astgrep_image
    from sandbox.docker_pool import DockerSandbox

    sb = DockerSandbox(image=ensure_astgrep_image(), pool_size=2)
    try:
        yield sb
    finally:
        sb.close()


@pytest.mark.docker
def test_filter_keeps_verified_steps_and_counts_every_drop(
    tmp_path: Path, astgrep_box: Sandbox
) -> None:
    train, dev, test = _rec("tr", "train"), _rec("dv", "dev", "src-b"), _rec("te", "test")
    lines = [
        _step(train, GOOD, 0),  # kept
        _step(train, GOOD, 1),  # same action again: duplicate
        _step(train, WRONG, 2),  # mismatch
        _step(dev, f"```yaml\n{GOOD}```", 3),  # kept (dev)
        _step(dev, "", 4),  # no proposal
        _step(test, GOOD, 5),  # held-out split: never training data
        _step(train, GOOD, 6, record_id="nope"),  # unknown record
        _step(dev, "rule: [", 7),  # parse error
        '{"id": "broken"}',  # bad row
    ]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "srl"
    report = filter_trajectories(raw, [train, dev, test], out_dir=out, sandbox=astgrep_box)
    stats = report.as_dict()
    assert stats["kept"] == 2 and stats["kept_by_split"] == {"train": 1, "dev": 1}
    assert stats["by_source"]["src-a"] == {
        "proposed": 5,
        "kept": 1,
        "dropped": {"duplicate": 1, "mismatch": 1, "heldout_split": 1, "unknown_record": 1},
    }
    assert stats["by_source"]["src-b"]["dropped"] == {"no_proposal": 1, "parse_error": 1}
    assert stats["by_source"]["<unparsed>"]["dropped"] == {"bad_row": 1}
    kept, problems = read_jsonl_rows(out / "train.jsonl", SRLStep)
    assert problems == [] and [k.record_id for k in kept] == ["tr"]
    assert kept[0].verified == "matches_post_code" and "fix: $A + $B" in kept[0].action
    assert json.loads((out / "stats.json").read_text())["kept"] == 2
    outcomes = step_outcomes(report)
    assert len(outcomes) == len(lines) and sum(o.value for o in outcomes) == 2
    assert [o.item_id for o in outcomes if o.value] == ["t/tr/0", "t/dv/3"]
