"""Batched thought sampling after many prefixes equals sampling each prefix alone."""

from __future__ import annotations

from typing import Any

import torch

from trainers.quiet_star.sequences import Vocab
from trainers.quiet_star.thoughts import sample_thoughts, sample_thoughts_batch


def test_left_padded_batch_matches_each_prefix_alone(tokenised: Any, items: list[Any]) -> None:
    """Greedy thoughts after prefixes of different lengths, decoded together, are the ones
    each prefix gets alone (left padding, masks and position ids are right)."""
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    seq = vocab.prompt(items[0]) + vocab.answer(items[0].answer)
    prefixes = [seq[:3], seq[:11], seq[: len(vocab.prompt(items[0]))], vocab.prompt(items[1])]
    together = sample_thoughts_batch(model, prefixes, vocab, k=2, max_len=6, temperature=0)
    for p, got in zip(prefixes, together, strict=True):
        alone = sample_thoughts(model, p, vocab, k=1, max_len=6, temperature=0)[0]
        assert got == [alone, alone]


def test_sampled_thoughts_end_with_the_marker_and_avoid_banned_tokens(
    tokenised: Any, items: list[Any]
) -> None:
    model, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    gen = torch.Generator().manual_seed(0)
    out = sample_thoughts_batch(
        model, [vocab.prompt(it) for it in items[:3]], vocab, k=4, max_len=5, temperature=1.0,
        generator=gen,
    )  # fmt: skip
    assert [len(ts) for ts in out] == [4, 4, 4]
    banned = {vocab.pad, vocab.eos, vocab.answer_sep, vocab.start}
    for ts in out:
        for t in ts:
            assert t[-1] == vocab.end and 1 <= len(t) <= 6
            assert not banned & set(t)
