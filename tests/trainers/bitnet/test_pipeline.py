"""The compression pipeline end to end at toy size: artifacts, sizes, controls, cache reuse."""

from __future__ import annotations

from pathlib import Path

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
