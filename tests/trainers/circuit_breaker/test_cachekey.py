"""Cache keys follow the producing code: editing a producing module changes them."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

import trainers.circuit_breaker.eval as cb_eval
from harness.cachekey import CacheKey, library_versions
from trainers.circuit_breaker.cachekey import (
    LIBRARIES,
    PHASE_MODULES,
    SWEEP_MODULES,
    TRAINER_MODULES,
)
from trainers.circuit_breaker.pipeline import PHASE_KIND, PhaseRunConfig


@pytest.fixture
def fake_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "cbkey_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "producer.py").write_text("X = 1\n")
    (pkg / "unrelated.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield pkg
    for name in [m for m in sys.modules if m.startswith("cbkey_pkg")]:
        del sys.modules[name]


def _phase_modules_with_a_temp_copy_of_eval(
    fake_pkg: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """PHASE_MODULES with ``trainers.circuit_breaker.eval`` swapped for a temp copy of it."""
    import trainers.circuit_breaker.pipeline as pipeline

    copy = fake_pkg / "cb_eval_copy.py"
    shutil.copyfile(str(cb_eval.__file__), copy)
    modules = tuple(
        "cbkey_pkg.cb_eval_copy" if m == "trainers.circuit_breaker.eval" else m
        for m in PHASE_MODULES
    )
    assert modules != PHASE_MODULES
    monkeypatch.setattr(pipeline, "PHASE_MODULES", modules)
    return copy


def test_editing_a_producing_module_changes_the_phase_key(
    fake_pkg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phase result's key (``cb-phase-<digest>.json``) follows an edit of a producer."""
    copy = _phase_modules_with_a_temp_copy_of_eval(fake_pkg, monkeypatch)
    cfg = PhaseRunConfig()
    before = cfg.cache_key()
    assert before.kind == PHASE_KIND and cfg.digest() == before.key
    assert before.code["cbkey_pkg.cb_eval_copy"]  # the copy is what is digested
    (fake_pkg / "unrelated.py").write_text("Y = 2\n")
    assert cfg.digest() == before.key  # not a producer: same key
    copy.write_text(copy.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    after = cfg.cache_key()
    assert after.key != before.key
    assert after.code["cbkey_pkg.cb_eval_copy"] != before.code["cbkey_pkg.cb_eval_copy"]
    assert after.config_digest == before.config_digest  # only the code changed


def test_the_phase_key_comes_from_the_one_cache_key_helper() -> None:
    key = PhaseRunConfig().cache_key()
    assert set(key.code) == set(PHASE_MODULES)
    assert key.libraries == library_versions(LIBRARIES) and key.libraries["torch"]
    assert key.seed == PhaseRunConfig().seed
    assert PhaseRunConfig(baseline_steps=251).digest() != key.key  # the config is in it too


def test_phase_modules_cover_the_trainer_and_every_step() -> None:
    assert set(TRAINER_MODULES) <= set(PHASE_MODULES)
    for module in ("trainers.circuit_breaker.eval", "trainers.circuit_breaker.coherence"):
        assert module in PHASE_MODULES


def test_sweep_rows_follow_the_sweep_code_too() -> None:
    """A sweep row is keyed on the sweep's own source as well; the phase result is not."""
    assert set(PHASE_MODULES) < set(SWEEP_MODULES)
    assert "trainers.circuit_breaker.sweep" in SWEEP_MODULES
    assert "trainers.circuit_breaker.sweep" not in PHASE_MODULES


def test_evaluations_are_cached_by_model_items_and_code(
    tiny_dir: Path,
    tokenizer: object,
    tmp_path: Path,
    fake_pkg: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import AutoModelForCausalLM

    import trainers.circuit_breaker.pipeline as pipeline
    from trainers.circuit_breaker.data import Split, WorldConfig, generate_world

    items = generate_world(WorldConfig(n_eval_attacks=2, n_eval_benign=1))[Split.EVAL]
    loads: list[int] = []

    def load() -> object:
        loads.append(1)
        return AutoModelForCausalLM.from_pretrained(tiny_dir)

    def run() -> list[dict[str, object]]:
        rows = pipeline.evaluate_run(
            load, tokenizer, items, model_digest="m1", batch_size=4, cache_dir=tmp_path
        )
        return json.loads(json.dumps(rows))  # as the phase result stores them (tuples → lists)

    first = run()
    assert len(first) == 3 and run() == first and len(loads) == 1  # second call: cache
    copy = _phase_modules_with_a_temp_copy_of_eval(fake_pkg, monkeypatch)
    assert run() == first and len(loads) == 2  # another producer file: evaluated again
    assert run() == first and len(loads) == 2
    copy.write_text(copy.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert run() == first and len(loads) == 3  # edited producer: evaluated again


def test_run_phase_reuses_its_result_unless_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainers.circuit_breaker.pipeline as pipeline
    from harness.cachekey import caches_used

    calls: list[str] = []

    def fake_run(cfg: object, key: CacheKey, cache_dir: Path, progress: object) -> object:
        calls.append(key.key)
        return pipeline.PhaseRun(
            config_digest=key.key,
            counts={},
            format_problems=[],
            n_audited=0,
            ds_dropped=0,
            ds_candidates=0,
            model_digests={},
            data_digest="d",
            train_logs={},
            results={},
            wall_s={},
        )

    monkeypatch.setattr(pipeline, "_run", fake_run)
    cfg = PhaseRunConfig()
    pipeline.run_phase(cfg, cache_dir=tmp_path, progress=lambda _m: None)
    pipeline.run_phase(cfg, cache_dir=tmp_path, progress=lambda _m: None)
    assert len(calls) == 1
    pipeline.run_phase(cfg, cache_dir=tmp_path, progress=lambda _m: None, refresh=True)
    assert len(calls) == 2
    noted = [v for v in caches_used().values() if v["kind"] == "circuit_breaker_phase"]
    assert noted and noted[-1]["key"] == cfg.digest() and noted[-1]["mode"] == "refresh"
