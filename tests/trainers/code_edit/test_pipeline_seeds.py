"""The pipeline's SRL seeds and the data-matched continued-SFT arm, on a tiny model.

k GRPO runs from one Stage 1 checkpoint, each under its own cache key (seed 0's key is
the single-run key, so an earlier single run is reused), and Stage 1 continued with plain
SFT on the same verified SRL steps; a rerun trains nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.code_edit.prompts import Target
from harness.data.code_edit.schema import Split
from harness.errors import TrainerError
from trainers.base import directory_digest
from trainers.code_edit.pipeline import (
    CodeEditPipelineConfig,
    srl_steps_as_records,
    train_pipeline,
)
from trainers.code_edit.sft import CodeEditSFTConfig
from trainers.code_edit.srl import SRLConfig
from trainers.tiny import build_tiny_model

from .test_sft_srl import TINY, _records, _srl_data


def _sft(tag: str, target: Target) -> CodeEditSFTConfig:
    return CodeEditSFTConfig(
        tag=tag, target=target, lora_r=2, max_steps=2, batch_size=2, warmup_steps=0
    )


CFG = CodeEditPipelineConfig(
    stage0=_sft("s0", Target.POST_CODE),
    stage1=_sft("s1", Target.ACTION),
    srl=SRLConfig(max_steps=3, batch_size=4, num_generations=2, max_completion_length=8, lora_r=2),
    srl_seeds=2,
    continued_sft=_sft("s1cont", Target.ACTION),
)


def test_seeds_and_continued_arm_are_cached_by_their_own_keys(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = build_tiny_model(TINY, out_dir=tmp_path_factory.mktemp("tiny"))
    tmp = tmp_path_factory.mktemp("pipe")
    records = _records(4)
    srl_dir = tmp / "srl"
    data = _srl_data(srl_dir, n=4)
    kw = {"base_dir": base, "srl_data": srl_dir, "config": CFG, "models_dir": tmp / "models"}
    arts = train_pipeline(records, progress=lambda _m: None, **kw)  # type: ignore[arg-type]
    assert arts.srl_seeds == (0, 1) and len(arts.srl_runs) == 2 and arts.srl is arts.srl_runs[0]
    assert len({a.path for a in arts.srl_runs}) == 2  # one cache entry per seed
    key0 = CFG.srl.cache_key(
        base_digest=directory_digest(arts.stage1.path / "model"), data_digest=data.digest
    )
    assert arts.srl_runs[0].config_digest == key0.key  # seed 0: the single-run key
    cont = arts.continued_sft
    assert cont.metrics["rows"] == 4 and cont.metrics["target"] == "action"
    again = train_pipeline(records, progress=lambda _m: None, **kw)  # type: ignore[arg-type]
    assert all(a.cached for a in (again.stage0, again.stage1, *again.srl_runs, again.continued_sft))
    assert [a.path for a in again.srl_runs] == [a.path for a in arts.srl_runs]


def test_srl_steps_become_stage1_rows_with_the_teachers_action(tmp_path: Path) -> None:
    records = _records(3)
    steps = _srl_data(tmp_path, n=3).steps
    rows = srl_steps_as_records(steps, records)
    assert [r.id for r in rows] == [s.id for s in steps]
    assert all(r.split is Split.TRAIN and r.action is not None for r in rows)
    assert rows[0].post_code == records[0].post_code
    with pytest.raises(TrainerError, match="not a train-split record"):
        srl_steps_as_records(steps, _records(3, Split.TEST))
