"""The champion carries the questions it was trained on (digests named in its manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.arithmetic import make_splits, question_digest
from harness.errors import DataValidationError
from trainers.forge.champion import (
    QUESTIONS_NAME,
    ChampionManifest,
    champion_dir,
    question_set,
    read_manifest,
    write_champion,
)
from trainers.forge.digitlm import DigitVocab, make_llama


def _write(models_dir: Path, questions: list[str]) -> Path:
    vocab = DigitVocab.fit(questions)
    model = make_llama(vocab, hidden=16, layers=1, heads=2, seed=0)
    manifest = ChampionManifest(
        cache_key="k", task="arithmetic", held_out_accuracy=0.1, created_by="test"
    )
    return write_champion(
        model, vocab, manifest, directory=champion_dir(models_dir), train_questions=questions
    )


def test_training_questions_are_written_and_named_with_their_digest(tmp_path: Path) -> None:
    questions = [it.question for it in make_splits({"train": 120})["train"]]
    d = _write(tmp_path, questions)
    m = read_manifest(d)
    assert m.train_questions is not None
    assert m.train_questions["file"] == QUESTIONS_NAME and m.train_questions["count"] == len(
        set(questions)
    )
    assert json.loads((d / "champion.json").read_text()) == m.model_dump(mode="json")
    seen = question_set(d, m.model_dump(mode="json"))
    assert seen == {question_digest(q) for q in questions}
    assert question_set(d, {"cache_key": "old"}) is None  # an older champion: no set
    (d / QUESTIONS_NAME).write_bytes(b"tampered")
    with pytest.raises(DataValidationError, match="does not match"):
        question_set(d, m.model_dump(mode="json"))
