"""Forge evaluator: a hand-built ForgeRun record mapped to each gate's outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.evaluators.forge import (
    accuracy_outcomes,
    best_parent,
    cka,
    cognate_markdown,
    cognate_storage_outcomes,
    cognate_training_outcomes,
    combos_outcome,
    complementarity,
    disagreement_outcomes,
    diversity_outcome,
    evolution_markdown,
    pairs,
    time_outcome,
)
from trainers.forge.pipeline import ForgeRun


def _run(features: Path | None = None) -> ForgeRun:
    targets = ["1", "2", "3", "4"]
    answers: dict[str, list[str | None]] = {
        "init": [None, None, None, None],
        "stem": ["1", "0", "0", "0"],
        "a": ["1", "2", "0", "0"],
        "b": ["1", "0", "3", None],
        "champion": ["1", "2", "3", "0"],
    }
    hist: list[dict[str, Any]] = [
        {"generation": g, "best": 0.5, "mean": 0.4, "diversity": 0.5, "fallbacks": 0,
         "injections": 0}
        for g in range(2)
    ]  # fmt: skip
    return ForgeRun(
        cache_key={"key": "k", "data": "d"}, task="t",
        config={"specialists": [{"name": "a"}, {"name": "b"}]},
        item_ids=[f"i{n}" for n in range(4)], levels=[1, 1, 2, 2], targets=targets,
        answers=answers, selection_accuracy=dict.fromkeys(answers, 0.25),
        history=hist,
        lineage={"m1": [[], "seed"], "m2": [[], "seed"], "m3": [["m1", "m2"], "linear+ties+dfs"]},
        champion_id="m3", combo_counts={"linear+ties+dfs": 2, "slerp+dare+dfs": 1},
        accepted_combos={"linear+ties+dfs": 1}, final_population_diversity=0.42,
        final_population=[{"id": "m3", "fitness": 0.5}],
        evolution_seconds={"wall": 12.5, "cpu": 10.0}, fitness_calls=7, controls={},
        paths={"features": str(features)} if features else {}, seconds={},
    )  # fmt: skip


def test_accuracy_and_improvement_pairing() -> None:
    run = _run()
    assert [o.value for o in accuracy_outcomes(run, "a")] == [1.0, 1.0, 0.0, 0.0]
    assert best_parent(run) == "a"  # a: 2/4, b: 2/4 → config order breaks the tie
    assert [o.item_id for o in accuracy_outcomes(run, "champion")] == run.item_ids
    with pytest.raises(HarnessError, match="unknown subject"):
        accuracy_outcomes(run, "nope")


def test_disagreement_counts_missing_answers_and_copies_give_zero() -> None:
    run = _run()
    assert pairs(run) == [("a", "b")]
    assert [o.value for o in disagreement_outcomes(run, "a", "b")] == [0.0, 1.0, 1.0, 1.0]
    assert all(o.value == 0.0 for o in disagreement_outcomes(run, "a", "a"))
    assert complementarity(run, "a", "b") == 0.5


def test_exact_outcomes() -> None:
    run = _run()
    assert diversity_outcome(run)[0].value == 0.42
    assert combos_outcome(run)[0].value == 1.0
    assert combos_outcome(run, accepted={"x": 0})[0].value == 0.0
    assert time_outcome(run)[0].value == 12.5


def test_cka_from_saved_features_and_markdown(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    np.savez(tmp_path / "f.npz", a=x, b=2 * x + 1, champion=x)
    run = _run(tmp_path / "f.npz")
    assert cka(run, "a", "b") == pytest.approx(1.0)
    assert np.isnan(cka(_run(), "a", "b"))
    md = cognate_markdown(run, figures=["figures/x.png"])
    assert "| a / b | 0.750 | 0.500 | 1.000 |" in md and "![figures/x.png]" in md
    assert "linear+ties+dfs" in evolution_markdown(run)


def test_cognate_training_time_sums_stem_and_specialists() -> None:
    run = _run()
    run.seconds = {"stem": 10.0, "a": 2.5, "b": 3.0, "total": 99.0}
    outcomes = cognate_training_outcomes(run)
    assert [o.item_id for o in outcomes] == ["train_stem", "train_a", "train_b"]
    assert sum(o.value for o in outcomes) == 15.5  # "total" (evolution included) is not training
    run.seconds = {"stem": 10.0, "a": 2.5}
    with pytest.raises(HarnessError, match="no training seconds for b"):
        cognate_training_outcomes(run)


def test_cognate_storage_counts_checkpoints_and_user_data(tmp_path: Path) -> None:
    run = _run()
    for name, size in (("stem", 100), ("a", 40), ("b", 60)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x" * size)
        run.paths[name] = str(tmp_path / name)
    (tmp_path / "data.jsonl").write_bytes(b"y" * 7)
    run.config["data_path"] = str(tmp_path / "data.jsonl")
    outcomes, missing = cognate_storage_outcomes(run)
    assert missing == [] and sum(o.value for o in outcomes) == 207.0
    run.paths["b"] = str(tmp_path / "gone")
    outcomes, missing = cognate_storage_outcomes(run)
    assert len(missing) == 1 and missing[0].startswith("b (")
