"""BitNet b1.58 quantizers: absmean ternary weights, absmax int8 activations, STE gradients."""

from __future__ import annotations

import torch

from trainers.bitnet.quant import (
    BitLinear,
    absmean_ternary,
    act_quant,
    bitlinear_eval,
    ternary_linears,
    to_bitlinear,
)
from trainers.bitnet.task import tiny_llama


def test_absmean_ternary_follows_roundclip() -> None:
    w = torch.tensor([[0.0, 0.2, -0.2, 1.0], [-3.0, 0.6, -0.6, 0.1]])
    codes, scale = absmean_ternary(w)
    assert torch.isclose(scale, w.abs().mean() + 1e-5)
    expected = (w / scale).round().clamp(-1, 1).to(torch.int8)
    assert torch.equal(codes, expected)
    assert set(codes.unique().tolist()) <= {-1, 0, 1}


def test_act_quant_is_per_token_absmax_int8() -> None:
    x = torch.tensor([[0.5, -1.0, 0.25], [10.0, 0.0, -5.0]])
    xq, a = act_quant(x)
    assert torch.equal(xq[:, 1].abs().max(), torch.tensor(127.0)) or xq.abs().amax(1).eq(127).all()
    assert xq.abs().amax(dim=1).eq(127).all()
    assert torch.equal(xq, xq.round()) and xq.min() >= -128 and xq.max() <= 127
    assert torch.allclose(xq / a, x, atol=10.0 / 127)


def test_ste_passes_gradient_to_latent_weight_and_input() -> None:
    torch.manual_seed(0)
    layer = BitLinear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    layer.train()
    y = layer(x)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # straight-through: dL/dW is what a plain linear with the *quantized* input gives
    _, a = act_quant(x.detach())
    xq = (x.detach() * a).round().clamp(-128, 127) / a
    assert torch.allclose(layer.weight.grad, torch.ones(3, 4).T @ xq, atol=1e-5)
    assert x.grad is not None
    codes, scale = absmean_ternary(layer.weight)
    assert torch.allclose(x.grad, torch.ones(3, 4) @ (codes.float() * scale), atol=1e-5)


def test_train_forward_matches_quantized_eval_forward() -> None:
    torch.manual_seed(1)
    layer = BitLinear(16, 8)
    x = torch.randn(5, 16)
    layer.train()
    y_train = layer(x)
    layer.eval()
    assert layer.codes is not None and layer.scale is not None
    assert torch.allclose(y_train, layer(x), atol=1e-5)
    assert torch.equal(layer(x), bitlinear_eval(x, layer.codes, layer.scale))


def test_surgery_replaces_every_linear_but_the_head() -> None:
    model = tiny_llama(hidden=16, layers=2, heads=2, intermediate=32, seed=0)
    names = ternary_linears(model)
    assert len(names) == 2 * 7 and "lm_head" not in names
    to_bitlinear(model, names)
    assert all(isinstance(model.get_submodule(n), BitLinear) for n in names)
    assert not isinstance(model.lm_head, BitLinear)
