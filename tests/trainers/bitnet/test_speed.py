"""Decode timing helpers: interleaving, byte accounting, and packed == quantized decode."""

from __future__ import annotations

import copy

import pytest
import torch

from trainers.bitnet.quant import ternary_linears, to_bitlinear
from trainers.bitnet.speed import (
    bytes_per_token,
    greedy_decode,
    interleaved_decode,
    packed_copy,
    summary,
)
from trainers.bitnet.task import tiny_llama


def _prompts() -> list[torch.Tensor]:
    return [torch.tensor([[12, 1, 2, 10, 3, 4, 11]]), torch.tensor([[12, 9, 9, 10, 0, 1, 11]])]


def test_packed_copy_decodes_the_same_tokens_as_the_quantized_model() -> None:
    model = tiny_llama(hidden=32, layers=2, heads=2, intermediate=64, seed=0).eval()
    quantized = copy.deepcopy(model)
    to_bitlinear(quantized, ternary_linears(quantized))
    quantized.eval()
    packed = packed_copy(model)
    for prompt in _prompts():
        assert greedy_decode(packed, prompt, 6)[1] == greedy_decode(quantized, prompt, 6)[1]


def test_bytes_per_token_counts_two_bits_per_ternary_weight() -> None:
    model = tiny_llama(hidden=32, layers=1, heads=2, intermediate=64, seed=0).eval()
    fp32 = bytes_per_token(model)
    linear = 4 * 32 * 32 + 3 * 32 * 64
    head = 13 * 32
    assert fp32 == 4 * (linear + head + 32)
    assert bytes_per_token(packed_copy(model)) == linear // 4 + 7 * 4 + 4 * (head + 32)


def test_interleaved_decode_times_every_model_on_every_prompt() -> None:
    model = tiny_llama(hidden=32, layers=1, heads=2, intermediate=64, seed=0).eval()
    models = {"fp32": model, "ternary": packed_copy(model)}
    timings = interleaved_decode(models, _prompts(), new_tokens=4, threads=1)
    assert all(len(t.seconds_per_token) == 2 and len(t.tokens[0]) == 4 for t in timings.values())
    table = summary(timings, {"fp32": 100, "ternary": 10})
    assert table["fp32"]["median_tokens_per_s"] > 0
    with pytest.raises(ValueError, match="new_tokens"):
        greedy_decode(model, _prompts()[0], 1)


def test_measure_speed_runs_both_subjects_once_per_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trainers.bitnet.packing import save_packed
    from trainers.bitnet.speed_run import SpeedConfig, measure_speed

    model = tiny_llama(hidden=32, layers=1, heads=2, intermediate=64, seed=0).eval()
    model.save_pretrained(tmp_path / "fp")
    q = copy.deepcopy(model)
    to_bitlinear(q, ternary_linears(q))
    q.eval()
    save_packed(q, tmp_path / "packed")
    cfg = SpeedConfig(
        wide_hidden=64, wide_intermediate=128, wide_layers=1, wide_heads=2, wide_vocab=32,
        prompts=2, prompt_len=4, new_tokens=3, tiny_new_tokens=3, bandwidth_mbytes=8,
    )  # fmt: skip
    kwargs = {
        "fp_dir": tmp_path / "fp",
        "packed_dir": tmp_path / "packed",
        "tiny_prompts": _prompts(),
        "cache_dir": tmp_path / "cache",
    }
    first = measure_speed(cfg, session="s1", **kwargs)
    assert set(first["wide"]["seconds_per_token"]) == {"fp32", "ternary", "fp32_repeat"}
    assert len(first["tiny"]["seconds_per_token"]["ternary"]) == 2
    # the machine load while timing: before, between the 2 prompts, after
    from harness.machine_load import LoadReading

    load = LoadReading.model_validate(first["wide"]["machine_load"])
    assert len(load.loadavg_1min) == 4 and load.wall_seconds > 0
    assert first["wide"]["fp32_linear_weight_bytes"] == 4 * (4 * 64 * 64 + 3 * 64 * 128 + 32 * 64)
    assert measure_speed(cfg, session="s1", **kwargs) == first  # shared within a session
    assert first["bandwidth_GBps"] > 0
