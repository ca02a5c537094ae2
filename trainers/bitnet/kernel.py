"""Batch-1 ternary GEMV on CPU over 2-bit packed weights and int8 activations (numba).

Layout (the same bytes as the artifact, see :mod:`trainers.bitnet.packing`): a
``(N, K)`` ternary matrix is padded to ``K4 = 4·ceil(K/4)`` columns and split
into four column planes of ``Q = K4/4``; byte ``j`` of row ``n`` holds the
codes of columns ``j, Q+j, 2Q+j, 3Q+j`` in bits 0-1, 2-3, 4-5, 6-7, with code
``c = t + 1`` (0 → −1, 1 → 0, 2 → +1).  So

    Σ_k T[n,k]·x[k] = Σ_j Σ_p c_p(P[n,j])·x[pQ+j] − Σ_k x[k]

and the inner loop is four shift-and-mask products over *contiguous* bytes and
activation planes, which LLVM vectorizes (no gathers, no dequantized copy of the
weights).  Decode at batch 1 is memory-bound: the kernel reads 2 bits per weight
where fp32 reads 32, which is where the speedup comes from.  Accumulation is
int32 and exact (|sum| ≤ 128·K).

Threads: ``prange`` over output rows uses numba's thread pool; callers set its
size (:func:`set_threads`) to match torch's so comparisons are like for like.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange

__all__ = [
    "PackedTernaryLinear",
    "pack_codes",
    "packed_linear_f32",
    "packed_width",
    "set_threads",
    "ternary_matmul_int",
    "unpack_codes",
]


def packed_width(k: int) -> int:
    """Bytes per packed row of a ``K``-input ternary matrix (``ceil(K/4)``)."""
    return (k + 3) // 4


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Ternary int8 ``(N, K)`` in {-1, 0, 1} → packed uint8 ``(N, ceil(K/4))`` (plane layout)."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"pack_codes needs a 2-D matrix, got shape {codes.shape}")
    if codes.size and (codes.min() < -1 or codes.max() > 1):
        raise ValueError("pack_codes: values must be in {-1, 0, +1}")
    n, k = codes.shape
    q = packed_width(k)
    c = np.ones((n, 4 * q), dtype=np.uint8)  # padding columns hold code 1 (weight 0)
    c[:, :k] = (codes + 1).astype(np.uint8)
    planes = c.reshape(n, 4, q)
    return planes[:, 0] | (planes[:, 1] << 2) | (planes[:, 2] << 4) | (planes[:, 3] << 6)


def unpack_codes(packed: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`; raises on the unused code 3 (a corrupt file)."""
    packed = np.asarray(packed, dtype=np.uint8)
    n, q = packed.shape
    if q != packed_width(k):
        raise ValueError(f"packed width {q} does not match K={k} (expected {packed_width(k)})")
    planes = np.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], axis=1)  # (n, 4, q)
    if (planes == 3).any():
        raise ValueError("packed ternary data holds the invalid code 3 (corrupt or not ternary)")
    return (planes.reshape(n, 4 * q)[:, :k].astype(np.int8) - 1).astype(np.int8)


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_planes(packed: np.ndarray, xp: np.ndarray, xsum: np.ndarray, out: np.ndarray) -> None:
    n_rows, q = packed.shape
    m_tok = xp.shape[0]
    for n in prange(n_rows):
        for m in range(m_tok):
            acc = np.int32(0)
            for j in range(q):
                b = np.int32(packed[n, j])
                acc += (
                    (b & 3) * np.int32(xp[m, 0, j])
                    + ((b >> 2) & 3) * np.int32(xp[m, 1, j])
                    + ((b >> 4) & 3) * np.int32(xp[m, 2, j])
                    + ((b >> 6) & 3) * np.int32(xp[m, 3, j])
                )
            out[m, n] = acc - xsum[m]


def ternary_matmul_int(packed: np.ndarray, x_int8: np.ndarray) -> np.ndarray:
    """Exact ``x @ Tᵀ`` as int32 ``(M, N)`` for int8 activations ``(M, K)`` and packed ``T``."""
    x_int8 = np.asarray(x_int8, dtype=np.int8)
    if x_int8.ndim == 1:
        x_int8 = x_int8[None, :]
    m, k = x_int8.shape
    q = packed.shape[1]
    if q != packed_width(k):
        raise ValueError(f"activation width {k} does not match packed width {q}")
    xpad = np.zeros((m, 4 * q), dtype=np.int8)
    xpad[:, :k] = x_int8
    xp = np.ascontiguousarray(xpad.reshape(m, 4, q))
    xsum = xpad.astype(np.int32).sum(axis=1).astype(np.int32)
    out = np.empty((m, packed.shape[0]), dtype=np.int32)
    _gemm_planes(np.ascontiguousarray(packed), xp, xsum, out)
    return out


def set_threads(n: int) -> None:
    """Size numba's thread pool (≤ the cores numba saw at start-up)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


@njit(cache=True)
def _quantize_rows(x: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-token absmax int8 (the float32 operations of ``quant.act_quant``, same order).

    Not ``fastmath``: the result must equal torch's bit for bit.
    """
    m, k = x.shape
    xp = np.zeros((m, 4, q), dtype=np.int8)
    xsum = np.zeros(m, dtype=np.int32)
    a = np.empty(m, dtype=np.float32)
    eps = np.float32(1e-5)
    for t in range(m):
        amax = np.float32(0.0)
        for i in range(k):
            v = abs(x[t, i])
            if v > amax:
                amax = v
        if amax < eps:
            amax = eps
        at = np.float32(127.0) / amax
        a[t] = at
        s = np.int32(0)
        for i in range(k):
            r = np.rint(x[t, i] * at)
            r = min(max(r, np.float32(-128.0)), np.float32(127.0))
            xp[t, i // q, i % q] = np.int8(r)
            s += np.int32(r)
        xsum[t] = s
    return xp, xsum, a


@njit(cache=True)
def _rescale(acc: np.ndarray, scale: np.float32, a: np.ndarray) -> np.ndarray:
    m, n = acc.shape
    y = np.empty((m, n), dtype=np.float32)
    for t in range(m):
        r = scale / a[t]
        for i in range(n):
            y[t, i] = np.float32(acc[t, i]) * r
    return y


def packed_linear_f32(x: np.ndarray, packed: np.ndarray, scale: np.float32) -> np.ndarray:
    """float32 ``(M, K)`` → float32 ``(M, N)``: quantize, ternary GEMM, rescale (all compiled)."""
    xp, xsum, a = _quantize_rows(x, packed.shape[1])
    acc = np.empty((x.shape[0], packed.shape[0]), dtype=np.int32)
    _gemm_planes(packed, xp, xsum, acc)
    return _rescale(acc, scale, a)


class PackedTernaryLinear(torch.nn.Module):
    """Inference-only linear layer over packed ternary weights (the deployable form).

    Its output is bit-identical to :func:`trainers.bitnet.quant.bitlinear_eval`
    on the same codes and scale: both quantize activations with the same
    float32 operations, compute the same integer sums (int32 here, exact float32
    there) and rescale with the same float32 operation (tested).
    """

    def __init__(
        self, packed: np.ndarray, scale: torch.Tensor, in_features: int, bias: torch.Tensor | None
    ) -> None:
        super().__init__()
        self.packed = np.ascontiguousarray(packed, dtype=np.uint8)
        self.scale = scale.detach().float().reshape(())
        self._scale32 = np.float32(self.scale.item())
        self.in_features = in_features
        self.out_features = int(self.packed.shape[0])
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = np.ascontiguousarray(x.detach().reshape(-1, shape[-1]).float().numpy())
        y = torch.from_numpy(packed_linear_f32(flat, self.packed, self._scale32))
        y = y.reshape(*shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits=2"
