"""BitNet b1.58 quantizers and the straight-through ``BitLinear`` layer.

Weights (one scale per tensor, absmean)::

    s = mean(|W|) + eps;   T = RoundClip(W / s, -1, 1) ∈ {-1, 0, +1};   W ≈ s · T

Activations (per token, absmax to 8 bits)::

    a = 127 / max(|x|, eps);   X = clamp(round(a · x), -128, 127);   x ≈ X / a

The layer output is ``(X @ Tᵀ) · (s / a)``.  ``X`` and ``T`` are integers, so
the matmul is an *integer* sum — in float32 it is exact while ``127 · K < 2²⁴``
(K ≤ 131,072 inputs), which is why the evaluation path, the packed CPU kernel
(int32 accumulation) and a reloaded artifact all produce bit-identical outputs.

Training uses the straight-through estimator ``v + (q(v) − v).detach()`` on
both the weight and the activation: the forward pass sees the quantized values,
the backward pass treats quantization as the identity, so the latent
full-precision weights keep learning (quantization-aware fine-tuning).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACT_MAX",
    "EPS",
    "BitLinear",
    "absmean_ternary",
    "act_quant",
    "bitlinear_eval",
    "ternary_linears",
    "to_bitlinear",
    "to_linear",
]

EPS = 1e-5
ACT_MAX = 127.0


def absmean_ternary(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, s)``: ternary codes as int8 in {-1, 0, +1} and the float32 per-tensor scale."""
    w = w.detach().float()
    scale = w.abs().mean() + EPS
    codes = (w / scale).round().clamp_(-1, 1).to(torch.int8)
    return codes, scale.reshape(())


def act_quant(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, a)``: per-token int8-valued activations (as float32) and their scales ``a``."""
    amax = x.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)
    a = torch.full_like(amax, ACT_MAX) / amax  # tensor/tensor: one IEEE division, like the kernel
    return (x * a).round().clamp(-128, 127), a


def bitlinear_eval(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The exact quantized forward: integer matmul in float32, then one rescale per token."""
    xq, a = act_quant(x.float())
    y = F.linear(xq, codes.to(torch.float32))
    return y * (scale / a)


class BitLinear(nn.Linear):
    """``nn.Linear`` whose forward is ternary-weight / int8-activation (BitNet b1.58).

    ``weight`` stays the latent full-precision parameter; in ``train()`` mode
    the forward uses straight-through quantization so gradients reach it, in
    ``eval()`` mode it uses :func:`bitlinear_eval` on the frozen codes
    (``freeze()``), which is what the packed artifact stores.
    """

    codes: torch.Tensor | None
    scale: torch.Tensor | None

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.codes = None
        self.scale = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.codes is None:
            return self._ste_forward(x)
        y = bitlinear_eval(x, self.codes, self.scale if self.scale is not None else torch.ones(()))
        return y.to(x.dtype) if self.bias is None else y.to(x.dtype) + self.bias

    def _ste_forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight.abs().mean().detach() + EPS
        wq = (self.weight / scale).round().clamp(-1, 1) * scale
        w = self.weight + (wq - self.weight).detach()
        a = ACT_MAX / x.abs().amax(dim=-1, keepdim=True).detach().clamp(min=EPS)
        xq = (x * a).round().clamp(-128, 127) / a
        xs = x + (xq - x).detach()
        return F.linear(xs, w, self.bias)

    def freeze(self) -> None:
        """Fix the ternary codes and scale from the current latent weight (for eval / export)."""
        codes, scale = absmean_ternary(self.weight)
        self.codes, self.scale = codes, scale

    def unfreeze(self) -> None:
        self.codes, self.scale = None, None

    def train(self, mode: bool = True) -> BitLinear:
        super().train(mode)
        if mode:
            self.unfreeze()
        elif self.codes is None:
            self.freeze()
        return self


def to_bitlinear(model: nn.Module, names: list[str]) -> None:
    """Replace the named ``nn.Linear`` submodules of ``model`` by ``BitLinear`` (weights shared)."""
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if isinstance(old, BitLinear):
            continue
        if not isinstance(old, nn.Linear):
            raise TypeError(f"{name} is {type(old).__name__}, not nn.Linear")
        new = BitLinear(old.in_features, old.out_features, bias=old.bias is not None)
        new.weight = old.weight
        if old.bias is not None:
            new.bias = old.bias
        new.train(old.training)
        setattr(parent, attr, new)


def ternary_linears(model: nn.Module) -> list[str]:
    """Names of the linear layers BitNet ternarizes: every ``nn.Linear`` except the LM head.

    Embeddings, norms and the output head stay in higher precision, as in the paper.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None  # type: ignore[operator]
    return [
        name
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and mod is not head
    ]


def to_linear(model: nn.Module, names: list[str]) -> None:
    """Undo :func:`to_bitlinear` for ``names`` (a fallback keeps these layers full precision)."""
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if not isinstance(old, BitLinear):
            continue
        new = nn.Linear(old.in_features, old.out_features, bias=old.bias is not None)
        new.weight = old.weight
        if old.bias is not None:
            new.bias = old.bias
        new.train(old.training)
        setattr(parent, attr, new)
