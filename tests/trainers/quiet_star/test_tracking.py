"""Step 2's curves reach W&B (offline): reward, mixing weight and accuracy, as returned."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.pipeline import arm_logger, curve_fn
from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.stages import quiet_star


def test_rl_curves_are_logged_offline_and_read_back(
    tokenised: Any, items: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("wandb") is None:
        if os.environ.get("HARNESS_REQUIRE_WANDB") == "1":
            pytest.fail("wandb is not installed but HARNESS_REQUIRE_WANDB=1 (CI installs it)")
        pytest.skip("wandb not installed (pip install 'gate-harness[wandb]')")
    from trainers.tracking import RunTracker, read_offline_run

    monkeypatch.delenv("WANDB_MODE", raising=False)
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    cfg = QuietStarConfig(
        rl_steps=3, rl_batch=2, thoughts_per_item=2, max_thought=3, curve_every=2,
        thought_stride=7, question_weight=1.0,
    )  # fmt: skip
    head = MixingHead(model.config.hidden_size)
    points: list[dict[str, float]] = []
    with RunTracker(name="qs-test", directory=tmp_path / "wandb", mode="offline") as tr:
        curve = curve_fn(model, head, vocab, items[:4], cfg)
        stats = quiet_star(model, head, vocab, items, cfg, arm_logger("main", tr, points), curve)
    run = read_offline_run(tr.record()["run_dir"])
    rl = [row for row in run.history if "main/rl/mixing_weight" in row]
    assert [row["main/rl/step"] for row in rl] == [0, 1, 2]
    for key in ("reward_best_minus_worst", "reward_abs", "mixing_weight", "nll_answer"):
        assert [row[f"main/rl/{key}"] for row in rl] == pytest.approx(
            [getattr(s, key) for s in stats]
        )
    assert all(s.slots > cfg.rl_batch for s in stats)  # question positions besides A:
    ev = [row for row in run.history if "main/rl_eval/selection_accuracy_thought" in row]
    assert [row["main/rl_eval/step"] for row in ev] == [0, 2, 3]
    assert [p["step"] for p in points] == [0, 2, 3]
    for row, p in zip(ev, points, strict=True):
        for key in ("selection_accuracy_thought", "selection_accuracy_base"):
            assert row[f"main/rl_eval/{key}"] == pytest.approx(p[key])
            assert 0.0 <= p[key] <= 1.0
        assert 0.0 < p["selection_mixing_weight"] < 1.0
    steps = [row["_step"] for row in run.history]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
