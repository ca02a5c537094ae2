"""REINFORCE reward: sign and leave-one-out baseline; thought positions and look-ahead
targets; the policy gradient's direction."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import torch

from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.reinforce import (
    Slot,
    problem_slots,
    quiet_star_loss,
    rewards,
    thought_positions,
)
from trainers.quiet_star.sequences import Layout, Vocab


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
    slot = Slot((*prompt, *answer), len(prompt) - 1, len(answer), answer_time=True)
    args = (model, head, [slot], [thoughts], vocab)
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


@pytest.mark.parametrize("stride", [1, 3, 8])
def test_positions_cover_every_question_token_and_always_the_answer_time_one(
    stride: int,
) -> None:
    """Over the ``stride`` offsets every position is used once; ``A:`` (the last) always."""
    length = 23
    seen: list[int] = []
    for offset in range(stride):
        pos = thought_positions(length, stride=stride, offset=offset)
        assert pos[-1] == length - 1 and pos == sorted(set(pos))
        assert all(b - a == stride for a, b in itertools.pairwise(pos[:-1]))
        seen += pos[:-1]
    assert sorted(seen) == list(range(length - 1))
    assert thought_positions(length, stride=1, offset=0) == list(range(length))


def test_bad_stride_or_offset_is_an_error() -> None:
    with pytest.raises(ValueError, match="offset"):
        thought_positions(10, stride=4, offset=4)
    with pytest.raises(ValueError, match="stride"):
        thought_positions(10, stride=0, offset=0)


def test_slots_teacher_force_the_true_next_tokens(tokenised: Any, items: list[Any]) -> None:
    """Question slots score the next ``lookahead`` true tokens (fewer at the end), the
    answer-time slot the whole answer; the post layout puts them right after the thought."""
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    prompt, answer = vocab.prompt(items[0]), vocab.answer(items[0].answer)
    seq = [*prompt, *answer]
    slots = problem_slots(prompt, answer, stride=5, lookahead=4, rng=random.Random(0))
    assert [s.answer_time for s in slots] == [False] * (len(slots) - 1) + [True]
    assert slots[-1].pos == len(prompt) - 1 and slots[-1].n == len(answer)
    content = vocab.thought("[extract] 7")
    for s in slots:
        assert s.n == (len(answer) if s.answer_time else min(4, len(seq) - s.pos - 1))
        x = Layout.post_at(s.seq, s.pos, content, s.n, vocab)
        a, b = x.answer
        assert x.ids[:a] == [*seq[: s.pos + 1], vocab.start, *content, vocab.end]
        assert x.ids[a:b] == seq[s.pos + 1 : s.pos + 1 + s.n]
        y = Layout.base_at(s.seq, s.pos, s.n)
        assert y.ids[y.answer[0] : y.answer[1]] == x.ids[a:b]
    last = slots[-1]
    assert Layout.post_at(last.seq, last.pos, content, last.n, vocab) == Layout.post(
        prompt, content, answer, vocab
    )


def test_reward_baseline_is_per_position(tokenised: Any, items: list[Any]) -> None:
    """Rewards sum to zero within each slot (leave-one-out mean), whatever other slots do;
    the loss runs over question and answer-time slots together."""
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    prompt, answer = vocab.prompt(items[0]), vocab.answer(items[0].answer)
    slots = problem_slots(prompt, answer, stride=6, lookahead=3, rng=random.Random(1))
    thoughts = [
        [vocab.thought("[extract] 3"), vocab.thought(". ."), vocab.thought("[add] 4 7")]
        for _ in slots
    ]
    head = MixingHead(model.config.hidden_size)
    loss, st = quiet_star_loss(model, head, slots, thoughts, vocab, policy_weight=0.5)
    assert torch.isfinite(loss) and st.slots == len(slots) >= 2
    assert 0.0 <= st.mixing_weight <= 1.0 and 0.0 <= st.mixing_weight_answer <= 1.0
    ll = torch.randn(len(slots), 3) * 5
    ll[0] += 100.0  # one position far more likely does not move the others' rewards
    r = rewards(ll)
    assert torch.allclose(r.sum(-1), torch.zeros(len(slots)), atol=1e-4)
    assert torch.allclose(r[1:], rewards(ll[1:]))


def test_question_weight_zero_is_the_answer_time_loss_alone(
    tokenised: Any, items: list[Any]
) -> None:
    """``question_weight`` scales question slots against the answer-time one: 0 leaves
    exactly the answer-time loss, 1 the plain mean over slots (the paper)."""
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    prompt, answer = vocab.prompt(items[0]), vocab.answer(items[0].answer)
    slots = problem_slots(prompt, answer, stride=6, lookahead=3, rng=random.Random(2))
    thoughts = [[vocab.thought("[extract] 3"), vocab.thought("[add] 4 7")] for _ in slots]
    head = MixingHead(model.config.hidden_size)
    with torch.no_grad():
        zero, _ = quiet_star_loss(
            model, head, slots, thoughts, vocab, policy_weight=0.5, question_weight=0.0
        )
        alone, _ = quiet_star_loss(model, head, slots[-1:], thoughts[-1:], vocab, policy_weight=0.5)
        one, st = quiet_star_loss(model, head, slots, thoughts, vocab, policy_weight=0.0)
    assert torch.allclose(zero, alone, atol=1e-5)
    assert float(one) == pytest.approx(st.nll, rel=1e-5)
