"""The packed ternary kernel: exact integer results against a reference matmul."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers.bitnet.kernel import (
    PackedTernaryLinear,
    pack_codes,
    packed_width,
    ternary_matmul_int,
    unpack_codes,
)
from trainers.bitnet.quant import absmean_ternary, bitlinear_eval


def _ternary(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(-1, 2, size=(n, k)).astype(np.int8)


@pytest.mark.parametrize("k", [1, 3, 4, 5, 64, 130])
def test_pack_unpack_round_trip(k: int) -> None:
    codes = _ternary(np.random.default_rng(k), 7, k)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (7, packed_width(k))
    np.testing.assert_array_equal(unpack_codes(packed, k), codes)


def test_pack_is_two_bits_per_weight() -> None:
    assert pack_codes(np.zeros((16, 4096), dtype=np.int8)).nbytes == 16 * 4096 // 4


def test_pack_rejects_non_ternary_and_unpack_rejects_code_3() -> None:
    with pytest.raises(ValueError, match="-1, 0, \\+1"):
        pack_codes(np.array([[2, 0, 0, 0]], dtype=np.int8))
    with pytest.raises(ValueError, match="invalid code 3"):
        unpack_codes(np.array([[0xFF]], dtype=np.uint8), 4)


@pytest.mark.parametrize(("m", "n", "k"), [(1, 1, 1), (1, 33, 7), (3, 17, 130), (1, 64, 2048)])
def test_kernel_matches_reference_integer_matmul(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(n * k + m)
    codes = _ternary(rng, n, k)
    x = rng.integers(-128, 128, size=(m, k)).astype(np.int8)
    ref = x.astype(np.int64) @ codes.astype(np.int64).T
    got = ternary_matmul_int(pack_codes(codes), x)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref)


def test_kernel_extreme_values_are_exact() -> None:
    k = 4096
    codes = np.ones((2, k), dtype=np.int8)
    codes[1] = -1
    x = np.full((1, k), -128, dtype=np.int8)
    np.testing.assert_array_equal(ternary_matmul_int(pack_codes(codes), x), [[-128 * k, 128 * k]])


def test_packed_layer_is_bit_identical_to_the_quantized_forward() -> None:
    torch.manual_seed(0)
    w = torch.randn(48, 100)
    codes, scale = absmean_ternary(w)
    x = torch.randn(2, 5, 100)
    layer = PackedTernaryLinear(pack_codes(codes.numpy()), scale, 100, None)
    expected = bitlinear_eval(x, codes, scale)
    assert torch.equal(layer(x), expected)
