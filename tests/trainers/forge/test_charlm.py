"""Char-level encoding and teacher-forced exact match (a few CPU steps, no accuracy claim)."""

from __future__ import annotations

import pytest
import torch

from harness.data.arithmetic import ArithmeticItem, generate_item
from harness.errors import DataValidationError
from trainers.forge.charlm import VOCAB, encode, exact_match, tiny_char_llama, train_steps


def test_encode_masks_everything_but_the_answer() -> None:
    items = [generate_item(s, d) for s, d in ((0, 1), (1, 4))]
    b = encode(items)
    for i, it in enumerate(items):
        s, e = b.spans[i]
        assert "".join(VOCAB[t] for t in b.labels[i, s:e].tolist()) == it.answer + "\n"
        assert (b.labels[i, :s] == -100).all() and (b.labels[i, e:] == -100).all()
    with pytest.raises(DataValidationError, match="char encoding"):
        encode([ArithmeticItem("naïve?", "1")])


def test_exact_match_equals_greedy_decoding_on_a_forced_model() -> None:
    item = generate_item(3, 2)
    b = encode([item])
    s, e = b.spans[0]

    class Oracle(torch.nn.Module):
        """Predicts the next true character everywhere except one chosen position."""

        def __init__(self, wrong_at: int | None) -> None:
            super().__init__()
            self.wrong_at = wrong_at

        def forward(self, input_ids: torch.Tensor) -> object:
            nxt = torch.roll(input_ids, -1, dims=1)
            if self.wrong_at is not None:
                nxt[:, self.wrong_at] = (nxt[:, self.wrong_at] + 1) % len(VOCAB)
            logits = torch.nn.functional.one_hot(nxt, len(VOCAB)).float()
            return type("Out", (), {"logits": logits})()

    assert exact_match(Oracle(None), [item]) == [True]
    assert exact_match(Oracle(e - 2), [item]) == [False]  # wrong newline → wrong
    assert exact_match(Oracle(s - 5), [item]) == [True]  # errors in the prompt do not count


def test_a_few_training_steps_reduce_the_loss() -> None:
    items = [generate_item(s, 1) for s in range(64)]
    model = tiny_char_llama(hidden=32, layers=1, heads=2, seed=0)
    losses = train_steps(model, items, steps=12, batch=16, lr=1e-2)
    assert sum(losses[-3:]) / 3 < losses[0]
    assert len(exact_match(model, items[:5])) == 5
