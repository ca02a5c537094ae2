"""Mixing head: weights in [0, 1]; w = 0 is the base model exactly; thought tokens never answer."""

from __future__ import annotations

from typing import Any

import torch

from trainers.quiet_star.mixing import MixingHead, answer_states, mix
from trainers.quiet_star.sequences import Layout, Vocab, batch, visible_mask


def _states(model: Any, tok: Any, items: list[Any]) -> tuple[Any, Any, Vocab]:
    vocab = Vocab.of(tok)
    prompts = [vocab.prompt(it) for it in items]
    answers = [vocab.answer(it.answer) for it in items]
    hidden = visible_mask(vocab)
    base = answer_states(
        model,
        batch([Layout.base(p, a) for p, a in zip(prompts, answers, strict=True)], pad=vocab.pad),
        hidden,
    )
    thought = vocab.thought("[extract] 3 [add] 4 7")
    post_rows = [Layout.post(p, thought, a, vocab) for p, a in zip(prompts, answers, strict=True)]
    post = answer_states(model, batch(post_rows, pad=vocab.pad), hidden)
    return base, post, vocab


def test_head_outputs_weights_in_unit_interval() -> None:
    head = MixingHead(8, init_bias=0.0)
    w = head(torch.randn(5, 3, 8) * 10, torch.randn(5, 3, 8) * 10)
    assert w.shape == (5, 3)
    assert bool(((w >= 0) & (w <= 1)).all())


def test_weight_zero_is_the_base_distribution_and_one_the_post(
    tokenised: Any, items: list[Any]
) -> None:
    model, tok, _, _ = tokenised
    with torch.no_grad():
        base, post, _ = _states(model, tok, items[:4])
        finite = ~torch.isinf(base.logp)
        lp0, _ = mix(base, post, torch.zeros(base.mask.shape))
        lp1, _ = mix(base, post, torch.ones(base.mask.shape))
    assert torch.allclose(lp0[finite], base.logp[finite], atol=1e-6)
    assert torch.allclose(lp1[finite], post.logp[finite], atol=1e-6)


def test_thought_tokens_have_zero_probability_in_the_answer(
    tokenised: Any, items: list[Any]
) -> None:
    model, tok, _, _ = tokenised
    with torch.no_grad():
        base, post, vocab = _states(model, tok, items[:4])
        lp, _ = mix(base, post, torch.full(base.mask.shape, 0.5))
    assert bool(torch.isinf(lp[..., list(vocab.thought_ids)]).all())
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:-1]), atol=1e-5)


def test_head_gradient_flows_from_the_answer_loss(tokenised: Any, items: list[Any]) -> None:
    model, tok, _, _ = tokenised
    head = MixingHead(model.config.hidden_size)
    base, post, _ = _states(model, tok, items[:4])
    _, tok_lp = mix(base, post, head(base.hidden, post.hidden))
    (-tok_lp.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_post_layout_spans_point_at_thought_and_answer(tokenised: Any, items: list[Any]) -> None:
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    prompt, answer = vocab.prompt(items[0]), vocab.answer(items[0].answer)
    content = vocab.thought("[extract] 3")
    x = Layout.post(prompt, content, answer, vocab)
    ts, te = x.thought  # type: ignore[misc]
    assert x.ids[ts - 1] == vocab.start and x.ids[ts:te] == content and x.ids[te] == vocab.end
    s, e = x.answer
    assert x.ids[s:e] == answer and e == len(x.ids)
