"""REINFORCE reward: sign and leave-one-out baseline; the policy gradient's direction."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.reinforce import quiet_star_loss, rewards
from trainers.quiet_star.sequences import Vocab


def test_reward_is_loglik_minus_mean_of_the_other_thoughts() -> None:
    ll = torch.tensor([[-1.0, -2.0, -3.0, -6.0]])
    r = rewards(ll)
    want = [-1.0 - (-11.0 / 3), -2.0 - (-10.0 / 3), -3.0 - (-9.0 / 3), -6.0 - (-6.0 / 3)]
    assert torch.allclose(r, torch.tensor([want]))


def test_reward_sign_follows_the_likelihood() -> None:
    r = rewards(torch.tensor([[-0.5, -4.0, -4.0]]))
    assert r[0, 0] > 0 and r[0, 1] < 0 and r[0, 2] < 0


def test_equal_thoughts_get_zero_reward_and_shift_does_not_matter() -> None:
    assert torch.equal(rewards(torch.full((2, 4), -3.0)), torch.zeros(2, 4))
    ll = torch.tensor([[-1.0, -2.5, -0.3]])
    assert torch.allclose(rewards(ll), rewards(ll + 7.0))


def test_reward_needs_two_thoughts() -> None:
    with pytest.raises(ValueError):
        rewards(torch.tensor([[-1.0]]))


def test_policy_gradient_raises_the_better_thought(tokenised: Any, items: list[Any]) -> None:
    """One SGD step on the policy term alone moves log π toward the higher-reward thought."""
    from trainers.quiet_star.mixing import answer_states, mix
    from trainers.quiet_star.reinforce import thought_logprob
    from trainers.quiet_star.sequences import Layout, batch, visible_mask

    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    it = items[0]
    prompt, answer = vocab.prompt(it), vocab.answer(it.answer)
    thoughts = [vocab.thought(f"[extract] {it.answer}"), vocab.thought("[plan] . . .")]
    head = MixingHead(model.config.hidden_size, init_bias=4.0)
    hidden = visible_mask(vocab)

    def measure() -> tuple[torch.Tensor, torch.Tensor]:
        rows = [Layout.post(prompt, t, answer, vocab) for t in thoughts]
        post = answer_states(model, batch(rows, pad=vocab.pad), hidden)
        base_rows = [Layout.base(prompt, answer)] * 2
        base = answer_states(model, batch(base_rows, pad=vocab.pad), hidden)
        _, tok_lp = mix(base, post, head(base.hidden, post.hidden))
        return rewards(tok_lp.sum(-1)[None])[0], thought_logprob(post.logits, rows, vocab)

    with torch.no_grad():
        r, before = measure()
    args = (model, head, [prompt], [answer], [thoughts], vocab)
    policy_only = (
        quiet_star_loss(*args, policy_weight=1.0)[0] - quiet_star_loss(*args, policy_weight=0.0)[0]
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt.zero_grad()
    policy_only.backward()
    opt.step()
    with torch.no_grad():
        _, after = measure()
    sign = 1.0 if r[0] > r[1] else -1.0
    assert r[0] != r[1]
    assert sign * ((after[0] - after[1]) - (before[0] - before[1])) > 0
