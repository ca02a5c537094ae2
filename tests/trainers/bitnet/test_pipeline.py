"""The compression pipeline end to end at toy size: artifacts, sizes, controls, cache reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.bitnet.config import BitNetConfig
from trainers.bitnet.pipeline import CompressionRunConfig, dir_bytes, run_compression

TOY = CompressionRunConfig(
    hidden=16,
    layers=2,
    heads=2,
    intermediate=32,
    fp_steps=4,
    fp_batch=16,
    n_dev=40,
    n_test=60,
    bitnet=BitNetConfig(steps_per_stage=2, stage_rounds=1, final_steps=1, batch_size=8,
                        dev_budget=0.99),
)  # fmt: skip


def test_toy_run_writes_artifacts_and_controls(tmp_path: Path) -> None:
    run = run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
    assert run.sizes["identity"] == run.sizes["fp32"] == dir_bytes(run.paths["fp32"])
    assert run.sizes["packed"] < run.sizes["bf16"] < run.sizes["fp32"]
    assert (Path(run.paths["packed"]) / "model.bitnet").is_file()
    assert run.correct["identity"] == run.correct["fp32"] and len(run.item_ids) == 60
    assert run.ternary_weights["zeroed"]["zeros"] == run.ternary_weights["zeroed"]["total"] > 0
    assert run.ternary_weights["identity"]["total"] == 0
    assert {s["stage"] for s in run.stages} == {0, 1} and len(run.layers) == 14
    assert run.tracking["name"].startswith("bitnet-qat-")
    again = run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
    assert again == run  # cached by config digest


def test_no_cache_recomputes_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is keyed by harness.cachekey and ``--no-cache`` (settings.no_cache)
    recomputes it once per run; ``_run`` is stubbed (the toy run above covers it)."""
    import dataclasses

    import trainers.bitnet.pipeline as pipeline
    from harness.settings import configure, reset_settings

    assert TOY.digest() != dataclasses.replace(TOY, seed=1).digest()
    calls: list[str] = []
    required = [
        f for f in dataclasses.fields(pipeline.CompressionRun)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip

    def fake_run(
        cfg: CompressionRunConfig, digest: str, root: Path, progress: object
    ) -> pipeline.CompressionRun:
        calls.append(digest)
        blank = {f.name: {} if "dict" in str(f.type) else [] if "list" in str(f.type) else 0
                 for f in required}  # fmt: skip
        return pipeline.CompressionRun(
            **{**blank, "config_digest": digest, "paths": {"fp32": str(root)}, "data_digest": ""}
        )

    monkeypatch.setattr(pipeline, "_run", fake_run)
    reset_settings()
    try:
        first = run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
        assert first.built_by_run is None
        run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
        assert len(calls) == 1
        configure(no_cache=True, run_id="r1")
        again = run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
        assert len(calls) == 2 and again.built_by_run == "r1"
        run_compression(TOY, cache_dir=tmp_path, progress=lambda _m: None)
        assert len(calls) == 2  # another worker of the same run reuses it
    finally:
        reset_settings()
