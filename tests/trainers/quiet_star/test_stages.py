"""Baking convergence scoring: an oracle that writes the canonical trace converges, a wrong one not.

The oracle is a lookup "model" (every prefix of the canonical post-thought rows → its
next token), so the test checks the greedy thought decoding (KV-cache path), the
teacher-forced answer check and the format check of :func:`baking_eval` without
training anything.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from trainers.quiet_star.config import QuietStarConfig
from trainers.quiet_star.sequences import Layout, Vocab
from trainers.quiet_star.stages import baking_eval
from trainers.quiet_star.traces import Trace, program_trace


class _Oracle(nn.Module):
    """Predicts the next token of whichever known row the prefix belongs to (else ``<pad>``)."""

    def __init__(self, rows: list[list[int]], size: int, pad: int) -> None:
        super().__init__()
        self.size, self.pad = size, pad
        self.next: dict[tuple[int, ...], int] = {}
        for row in rows:
            for j in range(1, len(row)):
                self.next[tuple(row[:j])] = row[j]

    def forward(self, input_ids: torch.Tensor, past_key_values: Any = None, **_: Any) -> Any:
        full = input_ids if past_key_values is None else torch.cat([past_key_values, input_ids], 1)
        logits = torch.zeros((*input_ids.shape, self.size))
        off = full.shape[1] - input_ids.shape[1]
        for b in range(full.shape[0]):
            for t in range(input_ids.shape[1]):
                prefix = tuple(int(i) for i in full[b, : off + t + 1])
                logits[b, t, self.next.get(prefix, self.pad)] = 1.0
        return SimpleNamespace(logits=logits, past_key_values=full)


def _traces(items: list[Any], width: int) -> list[Trace]:
    out = [program_trace(it, width=width) for it in items[:6]]
    return [t for t in out if t is not None]


def _rows(vocab: Vocab, traces: list[Trace], *, wrong_answer: bool = False) -> list[list[int]]:
    rows = []
    for t in traces:
        answer = str(int(t.item.answer) + 1) if wrong_answer else t.item.answer
        x = Layout.post(vocab.prompt(t.item), vocab.thought(t.thought), vocab.answer(answer), vocab)
        rows.append(x.ids)
    return rows


@pytest.mark.parametrize("width", [0, 3])
def test_an_oracle_of_the_canonical_trace_converges_on_every_item(
    tokenised: Any, items: list[Any], width: int
) -> None:
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    traces = _traces(items, width)
    oracle = _Oracle(_rows(vocab, traces), vocab.size, vocab.pad)
    rows = baking_eval(oracle, vocab, traces, QuietStarConfig(eval_split="dev"))
    assert [r["well_formed"] and r["answer_exact"] and r["trace_exact"] for r in rows] == [
        True
    ] * len(traces)


def test_a_right_thought_with_a_wrong_answer_does_not_converge(
    tokenised: Any, items: list[Any]
) -> None:
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    traces = _traces(items, 3)
    oracle = _Oracle(_rows(vocab, traces, wrong_answer=True), vocab.size, vocab.pad)
    rows = baking_eval(oracle, vocab, traces, QuietStarConfig(eval_split="dev"))
    assert all(r["trace_exact"] and r["well_formed"] for r in rows)
    assert not any(r["answer_exact"] for r in rows)


def test_an_unformatted_thought_does_not_converge(tokenised: Any, items: list[Any]) -> None:
    """A thought of plain numbers (no strategy token) fails the format half, answer or not."""
    _, tok, _, _ = tokenised
    vocab = Vocab.of(tok)
    traces = [Trace(t.item, t.item.answer) for t in _traces(items, 0)]
    oracle = _Oracle(_rows(vocab, traces), vocab.size, vocab.pad)
    rows = baking_eval(oracle, vocab, traces, QuietStarConfig(eval_split="dev"))
    assert all(r["answer_exact"] and not r["well_formed"] for r in rows)
