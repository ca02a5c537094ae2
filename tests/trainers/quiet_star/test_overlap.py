"""With forge's champion as input, evaluation items it trained on are dropped and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.data.arithmetic import make_splits, question_digest
from trainers.forge.champion import ChampionManifest, champion_dir, write_champion
from trainers.forge.digitlm import DigitVocab, make_llama
from trainers.quiet_star.base_model import InputModel
from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.pipeline import drop_champion_questions


def _champion(models_dir: Path, questions: list[str]) -> InputModel:
    vocab = DigitVocab.fit(questions)
    manifest = ChampionManifest(
        cache_key="k", task="arithmetic", held_out_accuracy=0.1, created_by="test"
    )
    model = make_llama(vocab, hidden=16, layers=1, heads=2, seed=0)
    d = write_champion(
        model, vocab, manifest, directory=champion_dir(models_dir), train_questions=questions
    )
    meta = json.loads((d.parent / "champion.json").read_text())
    return InputModel(model, None, "champion", {"path": str(d), "champion": meta})


def test_champion_training_questions_leave_the_evaluation_splits(tmp_path: Path) -> None:
    cfg = QuietStarConfig(n_train=200, n_selection=30, n_held_out=40)
    splits: dict[str, list[Any]] = dict(make_splits(cfg.splits(), difficulties=cfg.levels))
    leaked = [it.question for it in splits["held_out"][:6]] + [splits["selection"][0].question]
    start = _champion(tmp_path, [it.question for it in splits["train"]] + leaked)
    record = drop_champion_questions(start, splits, cfg)
    assert record["checked"] is True
    assert record["dropped"]["held_out"] == 6 and record["dropped"]["selection"] == 1
    assert len(record["dropped"]["held_out_seeds"]) == 6
    leaked_digests = {question_digest(q) for q in leaked}
    for name in ("selection", "held_out"):
        assert not {question_digest(it.question) for it in splits[name]} & leaked_digests
    assert len(splits["held_out"]) == 34

    old = InputModel(start.model, None, "champion", {"path": start.info["path"], "champion": {}})
    rec = drop_champion_questions(old, splits, cfg)
    assert rec["checked"] is False and "re-run forge" in rec["warning"]


def test_probe_config_scores_on_dev() -> None:
    cfg = QuietStarConfig(eval_split="dev", n_held_out=12)
    assert cfg.splits()["dev"] == 12 and "held_out" not in cfg.splits()
