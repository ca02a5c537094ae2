"""Cache keys follow the producing code: editing a producing module changes them."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from trainers.circuit_breaker.cachekey import (
    PHASE_MODULES,
    SWEEP_MODULES,
    TRAINER_MODULES,
    code_key,
)
from trainers.circuit_breaker.pipeline import PhaseRunConfig


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


def test_editing_a_producing_module_changes_the_key(fake_pkg: Path) -> None:
    before = code_key(["cbkey_pkg.producer"])
    (fake_pkg / "unrelated.py").write_text("Y = 2\n")
    assert code_key(["cbkey_pkg.producer"]) == before
    (fake_pkg / "producer.py").write_text("X = 2\n")
    assert code_key(["cbkey_pkg.producer"]) != before


def test_phase_digest_follows_the_code_key(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = PhaseRunConfig()
    real = cfg.digest()
    import trainers.circuit_breaker.pipeline as pipeline

    monkeypatch.setattr(pipeline, "code_key", lambda modules: {"sources": {"x": "edited"}})
    assert cfg.digest() != real


def test_phase_modules_cover_the_trainer_and_every_step() -> None:
    assert set(TRAINER_MODULES) <= set(PHASE_MODULES)
    for module in ("trainers.circuit_breaker.eval", "trainers.circuit_breaker.coherence"):
        assert module in PHASE_MODULES
    assert code_key(PHASE_MODULES)["libraries"]["torch"]


def test_sweep_rows_follow_the_sweep_code_too() -> None:
    """A sweep row is keyed on the sweep's own source as well; the phase result is not."""
    assert set(PHASE_MODULES) < set(SWEEP_MODULES)
    assert "trainers.circuit_breaker.sweep" in SWEEP_MODULES
    assert "trainers.circuit_breaker.sweep" not in PHASE_MODULES


def test_evaluations_are_cached_by_model_items_and_code(
    tiny_dir: Path, tokenizer: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
    monkeypatch.setattr(pipeline, "code_key", lambda modules: {"sources": {"x": "edited"}})
    assert run() == first and len(loads) == 2  # edited code: evaluated again


def test_run_phase_reuses_its_result_unless_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainers.circuit_breaker.pipeline as pipeline
    from harness.cachekey import caches_used

    calls: list[str] = []

    def fake_run(cfg: object, digest: str, cache_dir: Path, progress: object) -> object:
        calls.append(digest)
        return pipeline.PhaseRun(
            config_digest=digest,
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
