"""The pipeline config: YAML round trip, and errors that name file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import TrainerError
from trainers.code_edit.pipeline import CodeEditPipelineConfig, load_pipeline_config


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = CodeEditPipelineConfig()
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    assert load_pipeline_config(path) == cfg


def test_defaults_fill_missing_stages(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("srl: {max_steps: 12}\n", encoding="utf-8")
    cfg = load_pipeline_config(path)
    assert cfg.srl.max_steps == 12 and cfg.stage1 == CodeEditPipelineConfig().stage1
    assert cfg.srl_seeds == 3 and cfg.continued_sft.target == "action"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("srl: {batch_size: 6, num_generations: 4}\n", "srl"),
        ("stage0: {lora_r: -1}\n", "stage0.lora_r"),
        ("stage1: {target: diff}\n", "stage1.target"),
        ("stages: {}\n", "stages"),
        ("srl_seeds: 0\n", "srl_seeds"),
        ("continued_sft: {max_steps: 0}\n", "continued_sft.max_steps"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TrainerError, match=needle) as info:
        load_pipeline_config(path)
    assert str(path) in str(info.value)
