"""Per-parameter merge methods (linear, SLERP, TIES, DARE) on state dicts.

Semantics follow mergekit's definitions (see docs/forge.md for the deliberate
differences):

* **linear** — weighted mean ``Σ wᵢ θᵢ / Σ wᵢ``.
* **SLERP** — spherical interpolation between two models, computed per output
  row (dim 0) in fp32.  Rows whose normalised dot product has ``|dot| > 0.9995``
  (nearly parallel, where ``sin θ`` is ill-conditioned) or zero norm fall back
  to linear interpolation.  A 1-D tensor (norm gains, biases) is one row.
  ``granularity="tensor"`` treats each whole tensor as one vector instead, which is
  what mergekit 0.1.5 does (its leading "batch" axis stacks tensors, not rows).
* **TIES** — task vectors ``δᵢ = θᵢ − base``; keep the top ``k = max(1, ⌊density·n⌋)``
  entries of each by magnitude; elect a sign per entry as the sign of
  ``Σ wᵢ δᵢ`` over the trimmed vectors (a zero sum elects ``+``); average only the
  entries that agree with the elected sign (disjoint mean, divided by ``Σ wᵢ·maskᵢ``);
  add ``λ·merged``.
* **DARE** — keep each delta entry with probability ``p = density`` (Bernoulli)
  and rescale the survivors.  ``rescale="inverse_p"`` (default) multiplies by
  ``1/p`` as in the DARE paper (unbiased in expectation); ``rescale="l1"``
  matches the original L1 norm of the delta as mergekit does.  ``sign_consensus``
  turns DARE-linear into DARE-TIES.  As in mergekit, DARE does not normalise by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

from harness.errors import TrainerError

__all__ = [
    "DOT_THRESHOLD",
    "StateDict",
    "dare",
    "linear",
    "slerp",
    "slerp_tensor",
    "ties",
]

StateDict = dict[str, torch.Tensor]
Granularity = Literal["row", "tensor"]

#: mergekit's threshold: above it the two rows are treated as parallel (linear fallback).
DOT_THRESHOLD = 0.9995


def _check_same_keys(sds: Sequence[Mapping[str, torch.Tensor]], what: str) -> None:
    if not sds:
        raise TrainerError(f"{what}: needs at least one state dict; got none.")
    keys = set(sds[0])
    for i, sd in enumerate(sds[1:], start=1):
        if set(sd) != keys:
            diff = sorted(keys.symmetric_difference(sd))[:5]
            raise TrainerError(
                f"{what}: state dict {i} has different keys from state dict 0 (e.g. {diff}); "
                "merge only models of the same architecture."
            )
        for k in keys:
            if sd[k].shape != sds[0][k].shape:
                raise TrainerError(
                    f"{what}: {k!r} has shape {tuple(sd[k].shape)} in state dict {i} but "
                    f"{tuple(sds[0][k].shape)} in state dict 0."
                )


def _weights(n: int, weights: Sequence[float] | None, what: str) -> list[float]:
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise TrainerError(f"{what}: got {len(w)} weights for {n} models; pass one per model.")
    if sum(w) == 0:
        raise TrainerError(f"{what}: weights sum to 0; pass weights with a non-zero sum.")
    return w


def linear(
    sds: Sequence[Mapping[str, torch.Tensor]], *, weights: Sequence[float] | None = None
) -> StateDict:
    """Weighted mean of parameters, ``Σ wᵢ θᵢ / Σ wᵢ`` (mergekit ``linear``, normalised)."""
    _check_same_keys(sds, "linear")
    w = _weights(len(sds), weights, "linear")
    total = sum(w)
    out: StateDict = {}
    for k, ref in sds[0].items():
        acc = torch.zeros(ref.shape, dtype=torch.float32)
        for wi, sd in zip(w, sds, strict=True):
            acc = acc + wi * sd[k].float()
        out[k] = (acc / total).to(ref.dtype)
    return out


def slerp_tensor(
    a: torch.Tensor, b: torch.Tensor, t: float, *, granularity: Granularity = "row"
) -> torch.Tensor:
    """SLERP from ``a`` (t=0) to ``b`` (t=1) per row along dim 0 (or per tensor), in fp32."""
    if a.shape != b.shape:
        raise TrainerError(f"slerp: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}.")
    if granularity not in ("row", "tensor"):
        raise TrainerError(f"slerp: granularity={granularity!r}; use 'row' or 'tensor'.")
    rows = a.shape[0] if a.dim() >= 2 and granularity == "row" else 1
    a2, b2 = a.float().reshape(rows, -1), b.float().reshape(rows, -1)
    na, nb = a2.norm(dim=1), b2.norm(dim=1)
    safe = (na > 0) & (nb > 0)
    dot = torch.where(
        safe,
        (a2 * b2).sum(dim=1) / (na * nb).clamp_min(torch.finfo(torch.float32).tiny),
        torch.ones_like(na),
    ).clamp(-1.0, 1.0)
    parallel = (dot.abs() > DOT_THRESHOLD) | ~safe
    theta = torch.arccos(dot)
    sin_theta = torch.sin(theta)
    denom = torch.where(parallel, torch.ones_like(sin_theta), sin_theta)
    ca = torch.where(parallel, torch.full_like(dot, 1.0 - t), torch.sin((1.0 - t) * theta) / denom)
    cb = torch.where(parallel, torch.full_like(dot, t), torch.sin(t * theta) / denom)
    out = ca[:, None] * a2 + cb[:, None] * b2
    return out.reshape(a.shape).to(a.dtype)


def slerp(
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    *,
    t: float,
    granularity: Granularity = "row",
) -> StateDict:
    """SLERP every parameter of two same-architecture models (see :func:`slerp_tensor`)."""
    if not 0.0 <= t <= 1.0:
        raise TrainerError(f"slerp: t={t} is outside [0, 1]; pass an interpolation factor in it.")
    _check_same_keys([a, b], "slerp")
    return {k: slerp_tensor(a[k], b[k], t, granularity=granularity) for k in a}


def _check_density(density: float, what: str) -> None:
    if not 0.0 < density <= 1.0:
        raise TrainerError(f"{what}: density={density} is outside (0, 1]; pass a keep fraction.")


def _trim_top_k(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Zero all but the ``max(1, ⌊density·n⌋)`` largest-magnitude entries (mergekit's k)."""
    flat = delta.reshape(-1)
    k = max(1, int(density * flat.numel()))
    if k >= flat.numel():
        return delta.clone()
    out = torch.zeros_like(flat)
    if k > 0:
        idx = flat.abs().topk(k, sorted=False).indices
        out[idx] = flat[idx]
    return out.reshape(delta.shape)


def _disjoint_merge(
    deltas: list[torch.Tensor], w: list[float], *, sign_consensus: bool, normalize: bool
) -> torch.Tensor:
    """Combine weighted deltas; with consensus only entries agreeing with the elected sign.

    Elected sign = sign of ``Σ wᵢ δᵢ`` with a zero sum counting as ``+`` (mergekit's "sum"
    method).  Normalising divides by ``Σ wᵢ·maskᵢ`` with consensus (zeros → 1), else by ``Σ wᵢ``.
    """
    weighted = torch.stack([wi * d for wi, d in zip(w, deltas, strict=True)])
    wt = torch.tensor(w, dtype=weighted.dtype).reshape(-1, *([1] * (weighted.dim() - 1)))
    if sign_consensus:
        elected = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0)
        mask = torch.sign(weighted) == elected
        merged = (weighted * mask).sum(dim=0)
        divisor = (wt * mask).sum(dim=0)
        divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
    else:
        merged = weighted.sum(dim=0)
        divisor = torch.full_like(merged, sum(w) if abs(sum(w)) >= 1e-8 else 1.0)
    return merged / divisor if normalize else merged


def ties(
    base: Mapping[str, torch.Tensor],
    models: Sequence[Mapping[str, torch.Tensor]],
    *,
    density: float,
    weights: Sequence[float] | None = None,
    lam: float = 1.0,
    normalize: bool = True,
) -> StateDict:
    """TIES-merging: trim to ``density`` by magnitude, elect sign, disjoint mean, add ``λ·``."""
    _check_density(density, "ties")
    _check_same_keys([base, *models], "ties")
    w = _weights(len(models), weights, "ties")
    out: StateDict = {}
    for k, b in base.items():
        deltas = [_trim_top_k(m[k].float() - b.float(), density) for m in models]
        merged = _disjoint_merge(deltas, w, sign_consensus=True, normalize=normalize)
        out[k] = (b.float() + lam * merged).to(b.dtype)
    return out


def _dare_drop(
    delta: torch.Tensor,
    density: float,
    rescale: Literal["inverse_p", "l1"],
    generator: torch.Generator,
) -> torch.Tensor:
    if density >= 1.0:
        return delta
    keep = torch.rand(delta.shape, generator=generator) < density
    kept = delta * keep
    if rescale == "inverse_p":
        return kept / density
    before, after = float(delta.abs().sum()), float(kept.abs().sum())
    return kept * (before / after) if before >= 1e-7 and after >= 1e-7 else kept


def dare(
    base: Mapping[str, torch.Tensor],
    models: Sequence[Mapping[str, torch.Tensor]],
    *,
    density: float,
    seed: int,
    weights: Sequence[float] | None = None,
    rescale: Literal["inverse_p", "l1"] = "inverse_p",
    sign_consensus: bool = False,
    lam: float = 1.0,
    normalize: bool = False,
) -> StateDict:
    """DARE: Bernoulli(``density``) keep of each delta entry, rescale, then combine.

    As in mergekit, ``normalize`` is off by default (the result is ``base + λ Σ wᵢ δ̃ᵢ``);
    on, it divides by ``Σ wᵢ`` (or, with ``sign_consensus``, by ``Σ wᵢ·maskᵢ``).
    """
    _check_density(density, "dare")
    if rescale not in ("inverse_p", "l1"):
        raise TrainerError(f"dare: rescale={rescale!r}; use 'inverse_p' (paper) or 'l1'.")
    _check_same_keys([base, *models], "dare")
    w = _weights(len(models), weights, "dare")
    gen = torch.Generator().manual_seed(seed)
    out: StateDict = {}
    for k in sorted(base):
        b = base[k]
        deltas = [_dare_drop(m[k].float() - b.float(), density, rescale, gen) for m in models]
        merged = _disjoint_merge(deltas, w, sign_consensus=sign_consensus, normalize=normalize)
        out[k] = (b.float() + lam * merged).to(b.dtype)
    return {k: out[k] for k in base}
