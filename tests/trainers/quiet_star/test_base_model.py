"""The input model: forge's champion directory is read when present, the tiny model otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.errors import DataValidationError
from trainers.quiet_star.base_model import champion_dir, load_champion
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.pipeline import _input_model
from trainers.quiet_star.tokens import ENCODING, text_to_ids


def _publish(models_dir: Path, fresh: Any, *, encoding: str = ENCODING) -> Path:
    model, tok = fresh
    path = champion_dir(models_dir)
    model.save_pretrained(path)
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    (path / "forge_vocab.json").write_text(json.dumps({"encoding": encoding, "tokens": tokens}))
    (path.parent / "champion.json").write_text(json.dumps({"fitness": 0.5}))
    return path


def test_champion_is_the_input_when_published(tmp_path: Path, fresh: Any, items: list[Any]) -> None:
    path = _publish(tmp_path, fresh)
    got = _input_model(QuietStarConfig(), tmp_path, items)
    assert got.source == "champion"
    assert got.info["champion"] == {"fitness": 0.5}
    q = items[0].question
    assert text_to_ids(got.tokenizer, q) == text_to_ids(fresh[1], q)
    w = fresh[0].get_input_embeddings().weight
    assert torch.equal(got.model.get_input_embeddings().weight, w)
    assert load_champion(path).source == "champion"


def test_embedded_model_without_champion(tmp_path: Path, items: list[Any]) -> None:
    cfg = QuietStarConfig(hidden=16, layers=1, heads=2)
    assert _input_model(cfg, tmp_path, items).source == "embedded"
    assert _input_model(cfg, None, items).source == "embedded"


def test_unknown_vocabulary_encoding_is_an_error(tmp_path: Path, fresh: Any) -> None:
    path = _publish(tmp_path, fresh, encoding="char-v0")
    with pytest.raises(DataValidationError, match="field 'encoding'='char-v0'"):
        load_champion(path)
