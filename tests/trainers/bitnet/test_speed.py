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
