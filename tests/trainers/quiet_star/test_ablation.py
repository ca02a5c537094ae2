"""Anti-theater conditions: same lengths, derangement, filler, empty; scoring per condition."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from trainers.quiet_star.ablation import condition_thoughts, derangement, score_conditions
from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.sequences import Vocab


@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_derangement_has_no_fixed_point_and_is_a_permutation(n: int) -> None:
    d = derangement(n, seed=n)
    assert sorted(d) == list(range(n))
    assert all(d[i] != i for i in range(n))


def _own(vocab: Vocab) -> list[list[int]]:
    return [
        vocab.thought(t)
        for t in ("[extract] 3 [add] 4 7", "[extract] 12", "[extract] 5 [subtract] 2 3")
    ]


def test_each_condition_has_the_promised_content(tokenised: Any) -> None:
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    own = _own(vocab)
    c = condition_thoughts(own, vocab, seed=0)
    assert c["own"] == own
    assert [len(t) for t in c["random"]] == [len(t) for t in own]
    banned = {vocab.pad, vocab.eos, vocab.answer_sep, *vocab.thought_ids}
    assert not any(i in banned for t in c["random"] for i in t)
    assert sorted(map(tuple, c["shuffled"])) == sorted(map(tuple, own))
    assert all(s != o for s, o in zip(c["shuffled"], own, strict=True))
    assert c["filler"] == [[vocab.filler] * len(t) for t in own]
    assert c["none"] == [[], [], []]


def test_identical_conditions_score_identically(tokenised: Any, items: list[Any]) -> None:
    """The theater control's situation: a constant thought equals its filler and its shuffle."""
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    same = [vocab.filler] * 4
    own = [list(same) for _ in range(3)]
    c = condition_thoughts(own, vocab, seed=0)
    prompts = [vocab.prompt(it) for it in items[:3]]
    answers = [vocab.answer(it.answer) for it in items[:3]]
    torch.manual_seed(0)
    sc = score_conditions(model, MixingHead(model.config.hidden_size), prompts, answers, c, vocab)
    for cond in ("shuffled", "filler"):
        assert [r["p_bar"] for r in sc[cond]] == [r["p_bar"] for r in sc["own"]]
    assert all(r["w"] == 0.0 for r in sc["base"])
    assert all(0.0 <= r["p_bar"] <= 1.0 for rows in sc.values() for r in rows)


def test_informative_thought_scores_higher_after_it_is_learned(items: list[Any]) -> None:
    """A thought that carries the answer beats filler once the model learned to copy it."""
    from trainers.quiet_star.base_model import tiny_model
    from trainers.quiet_star.sequences import Layout
    from trainers.quiet_star.supervised import train_supervised
    from trainers.quiet_star.tokens import add_thought_tokens

    start = tiny_model(items, hidden=32, layers=2, heads=2, seed=0)
    model, tok = start.model, start.tokenizer
    add_thought_tokens(model, tok)
    vocab = Vocab.of(tok)
    rows = [
        (vocab.prompt(it), vocab.thought(f"[conclude] {it.answer}"), vocab.answer(it.answer))
        for it in items
    ]

    def sample(gen: torch.Generator, n: int) -> list[Layout]:
        idx = torch.randint(len(rows), (n,), generator=gen).tolist()
        return [Layout.post(*rows[i], vocab) for i in idx]

    train_supervised(model, sample, steps=200, batch_size=32, lr=1e-2, pad=vocab.pad, seed=0)
    own = [r[1] for r in rows[:40]]
    head = MixingHead(model.config.hidden_size, init_bias=6.0)
    sc = score_conditions(
        model, head, [r[0] for r in rows[:40]], [r[2] for r in rows[:40]],
        condition_thoughts(own, vocab, seed=0), vocab,
    )  # fmt: skip
    mean = {c: sum(r["p_bar"] for r in v) / len(v) for c, v in sc.items()}
    assert mean["own"] > mean["shuffled"] + 0.05
    assert mean["own"] > mean["filler"] + 0.05
