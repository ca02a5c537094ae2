"""The forge run end to end at toy size: record, cache reuse, champion contract, controls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainers.forge.champion import champion_dir, read_manifest
from trainers.forge.config import EvoSettings, ForgeConfig
from trainers.forge.pipeline import ForgeRun, run_forge

TOY = ForgeConfig(
    hidden=16, layers=2, heads=2, batch=16, stem_steps=6, specialist_steps=3, n_train=300,
    n_selection=24, n_held_out=30, evolution=EvoSettings(generations=2),
)  # fmt: skip


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ForgeRun, Path, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("forge")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "disabled")
    from harness.settings import reset_settings

    reset_settings()
    try:
        run = run_forge(TOY, cache_dir=root / "cache", models_dir=root / "models")
    finally:
        mp.undo()
        reset_settings()
    return run, root / "cache", root / "models"


def test_record_has_every_subject_on_the_same_held_out_items(toy_run: tuple) -> None:
    run, _, _ = toy_run
    assert len(run.targets) == 30 == len(run.item_ids)
    for subject in ("init", "stem", "reasoning", "memory", "speed", "champion",
                    "control_best_parent", "control_degenerate"):  # fmt: skip
        assert len(run.answers[subject]) == 30
        assert 0.0 <= run.selection_accuracy[subject] <= 1.0
    assert len(run.history) == 2 and run.fitness_calls > 0
    import numpy as np

    with np.load(run.paths["features"]) as feats:
        assert set(feats.files) == set(run.answers)
        assert feats["champion"].shape == (30, TOY.hidden)
    assert run.evolution_seconds["wall"] > 0


def test_controls_behave(toy_run: tuple) -> None:
    run, _, _ = toy_run
    dg = run.controls["degenerate_merge"]
    assert dg["children"] > 0 and dg["fallbacks"] == dg["children"]
    assert dg["accepted_combos"] == {}
    bp = run.controls["best_parent_merge"]
    assert bp["fallbacks"] == 0 and bp["children"] > 0


def test_champion_is_a_loadable_hf_checkpoint_with_its_manifest(toy_run: tuple) -> None:
    from transformers import AutoTokenizer, LlamaForCausalLM

    run, _, models = toy_run
    d = champion_dir(models)
    assert run.champion_path == str(d)
    m = read_manifest(d)
    assert m.cache_key == run.cache_key["key"] and m.task == run.task
    assert m.held_out_accuracy == run.accuracy("champion")
    assert json.loads((d / "champion.json").read_text()) == m.model_dump(mode="json")
    model = LlamaForCausalLM.from_pretrained(d)
    ref = LlamaForCausalLM.from_pretrained(run.paths["champion"])
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    AutoTokenizer.from_pretrained(d)
    assert m.task == "arithmetic"
    assert m.train_questions is not None  # the train split's questions, for consumers
    assert m.train_questions["count"] == TOY.n_train and m.train_questions["splits"] == ["train"]


def test_champion_contract_is_what_the_downstream_phases_read(toy_run: tuple) -> None:
    """The compression phase parses ``task`` and reads the in-directory manifest; Quiet-STaR
    loads the checkpoint with forge_vocab.json (their loaders, not a re-implementation)."""
    from trainers.bitnet.inputs import read_champion
    from trainers.bitnet.qa_task import load_task
    from trainers.quiet_star.base_model import load_champion

    _, _, models = toy_run
    manifest, why = read_champion(models)
    assert manifest is not None, why
    assert load_task(str(manifest["task"])).splits["test"]
    loaded = load_champion(champion_dir(models))
    assert loaded.source == "champion"


def test_second_call_reuses_the_cache(toy_run: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    run, cache, models = toy_run
    import trainers.forge.pipeline as pipeline

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("retrained although the cache key is unchanged")

    monkeypatch.setattr(pipeline, "_run", boom)
    again = run_forge(TOY, cache_dir=cache, models_dir=models)
    assert again.answers == run.answers and again.cache_key == run.cache_key
