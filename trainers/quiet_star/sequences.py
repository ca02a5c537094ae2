"""Token layouts shared by pretraining, baking, Quiet-STaR and evaluation.

One problem becomes ids in one of two layouts (``P`` = prompt ending in ``A:``):

* **base**: ``P + answer`` — the answer is predicted straight after the question;
* **post-thought**: ``P + [thinking] + thought + [/endthinking] + answer`` — a thought
  inserted after the last input token, the true answer teacher-forced after it
  (Quiet-STaR's "n_true" look-ahead over the whole answer).

Step 2 also places thoughts after earlier input tokens (:meth:`Layout.base_at`,
:meth:`Layout.post_at`): the thought follows token ``pos`` of ``prompt + answer`` and the
``n`` true tokens after ``pos`` are teacher-forced after it.

``answer`` is the number's pieces plus ``<eos>``.  :func:`batch` right-pads rows and
returns, per row, the position range of the answer so callers gather the predicting
positions ``s-1 … e-2``.  Thought tokens are never part of visible output:
:func:`visible_mask` marks the 12 thought tokens so every answer distribution sets them
to −∞ before normalising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.data.arithmetic import ArithmeticItem
from trainers.quiet_star.tokens import END, START, THOUGHT_TOKENS, pieces

__all__ = ["Batch", "Layout", "Vocab", "batch", "visible_mask"]


@dataclass(frozen=True)
class Vocab:
    """The ids the pipeline needs, read once from a tokenizer that has the thought tokens."""

    size: int
    pad: int
    eos: int
    answer_sep: int
    start: int
    end: int
    thought_ids: tuple[int, ...]
    filler: int
    tokenizer: Any

    @classmethod
    def of(cls, tokenizer: Any) -> Vocab:
        conv = tokenizer.convert_tokens_to_ids
        return cls(
            size=len(tokenizer),
            pad=int(conv("<pad>")),
            eos=int(conv("<eos>")),
            answer_sep=int(conv("A:")),
            start=int(conv(START)),
            end=int(conv(END)),
            thought_ids=tuple(int(conv(t)) for t in THOUGHT_TOKENS),
            filler=int(conv(".")),
            tokenizer=tokenizer,
        )

    def ids(self, text_pieces: Sequence[str]) -> list[int]:
        return [int(i) for i in self.tokenizer.convert_tokens_to_ids(list(text_pieces))]

    def prompt(self, item: ArithmeticItem) -> list[int]:
        return [*self.ids(pieces(item.question)), self.answer_sep]

    def answer(self, answer: str) -> list[int]:
        return [*self.ids(pieces(answer)), self.eos]

    def thought(self, text: str) -> list[int]:
        """Content ids of a thought text (without the markers)."""
        return self.ids(pieces(text))

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return [str(t) for t in self.tokenizer.convert_ids_to_tokens(list(ids))]


@dataclass(frozen=True)
class Layout:
    """One row: its ids, where the thought content starts/ends and the answer span."""

    ids: list[int]
    answer: tuple[int, int]
    thought: tuple[int, int] | None = None  # content span (END included), None for base

    @classmethod
    def base(cls, prompt: Sequence[int], answer: Sequence[int]) -> Layout:
        return cls([*prompt, *answer], (len(prompt), len(prompt) + len(answer)))

    @classmethod
    def post(
        cls, prompt: Sequence[int], content: Sequence[int], answer: Sequence[int], vocab: Vocab
    ) -> Layout:
        head = [*prompt, vocab.start, *content, vocab.end]
        s = len(head)
        return cls([*head, *answer], (s, s + len(answer)), (len(prompt) + 1, len(head) - 1))

    @classmethod
    def base_at(cls, seq: Sequence[int], pos: int, n: int) -> Layout:
        """``seq`` itself, scoring the ``n`` true tokens after index ``pos`` (no thought)."""
        _check_lookahead(seq, pos, n)
        return cls(list(seq[: pos + 1 + n]), (pos + 1, pos + 1 + n))

    @classmethod
    def post_at(
        cls, seq: Sequence[int], pos: int, content: Sequence[int], n: int, vocab: Vocab
    ) -> Layout:
        """A thought after token ``pos`` of ``seq``, then its ``n`` true next tokens.

        ``post_at(prompt + answer, len(prompt) - 1, c, len(answer))`` is ``post(prompt, c,
        answer)``: the answer-time thought is the last of the input positions.
        """
        _check_lookahead(seq, pos, n)
        return cls.post(seq[: pos + 1], content, seq[pos + 1 : pos + 1 + n], vocab)


def _check_lookahead(seq: Sequence[int], pos: int, n: int) -> None:
    if not (pos >= 0 and n >= 1 and pos + 1 + n <= len(seq)):
        raise ValueError(
            f"thought position {pos} with look-ahead {n} does not fit a sequence of {len(seq)}"
        )


@dataclass(frozen=True)
class Batch:
    ids: torch.Tensor
    attention: torch.Tensor
    layouts: list[Layout]


def batch(layouts: Sequence[Layout], *, pad: int) -> Batch:
    """Right-pad ``layouts`` into tensors."""
    width = max(len(x.ids) for x in layouts)
    ids = torch.full((len(layouts), width), pad, dtype=torch.long)
    att = torch.zeros((len(layouts), width), dtype=torch.long)
    for i, x in enumerate(layouts):
        ids[i, : len(x.ids)] = torch.tensor(x.ids)
        att[i, : len(x.ids)] = 1
    return Batch(ids, att, list(layouts))


def visible_mask(vocab: Vocab) -> torch.Tensor:
    """Boolean (V,) — True for the 12 thought tokens, which visible output never contains."""
    mask = torch.zeros(vocab.size, dtype=torch.bool)
    mask[list(vocab.thought_ids)] = True
    return mask
