"""A word/digit-level tiny Llama on arithmetic word problems (the Cognate models).

Why not characters (:mod:`trainers.forge.charlm`): a char model spends its capacity and
its attention span on spelling ("apples" is six positions) and meets every number
most-significant digit first, so carries must be predicted before the digits that cause
them.  Measured on this task it stayed at 3.5–7 % held-out exact match (docs/forge.md).
This encoding keeps the task and the exact answer check unchanged and changes only how
text becomes ids:

* every word and punctuation mark is one token (vocabulary fitted on the training
  split; unseen words map to ``<unk>``);
* every integer becomes one token per digit, **least-significant digit first**, wrapped
  in ``<n>`` … ``</n>`` — the order in which schoolbook addition, subtraction and
  multiplication produce digits, so each answer digit depends on digits already seen;
* the answer is written the same way after ``A:`` and closed by ``<eos>``; decoding
  reverses the digits back.

A problem is 25–70 tokens instead of 90–220 characters, so one CPU training step is
several times cheaper.  Loss is on the answer tokens only.  :func:`exact_match` uses one
teacher-forced pass: greedy decoding reproduces the answer iff the argmax at every answer
position is the target token (equal to generate-then-compare, without a decode loop);
:func:`greedy_answers` decodes for real (used where the answer text itself is needed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from harness.data.arithmetic import ArithmeticItem
from harness.errors import DataValidationError

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

__all__ = [
    "SPECIALS",
    "DigitBatch",
    "DigitVocab",
    "answer_logits_features",
    "exact_match",
    "greedy_answers",
    "make_llama",
    "train_steps",
]

#: Special tokens, in id order (``<pad>`` = 0).
SPECIALS = ("<pad>", "<unk>", "<n>", "</n>", "A:", "<eos>")
_PIECE = re.compile(r"\d+|[A-Za-z']+|[^\sA-Za-z\d]")


def _pieces(text: str) -> list[str]:
    """Words, integers (as one piece) and single punctuation marks."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class DigitVocab:
    """Token list (specials, digits 0–9, then words sorted) fitted on training questions."""

    tokens: tuple[str, ...]

    @classmethod
    def fit(cls, questions: Iterable[str]) -> DigitVocab:
        """All non-number pieces of ``questions`` plus the specials and ten digits."""
        words = {p for q in questions for p in _pieces(q) if not p.isdigit()}
        return cls(SPECIALS + tuple("0123456789") + tuple(sorted(words - set(SPECIALS))))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    def id(self, token: str) -> int:
        """Id of ``token`` (``<unk>`` for a word outside the vocabulary)."""
        ids: dict[str, int] = getattr(self, "_ids")  # noqa: B009 — set in __post_init__
        return ids.get(token, 1)

    def number(self, digits: str) -> list[int]:
        """``"120"`` → ids of ``<n> 0 2 1 </n>`` (least-significant digit first)."""
        return [self.id("<n>"), *(self.id(d) for d in reversed(digits)), self.id("</n>")]

    def prompt(self, question: str) -> list[int]:
        """Ids of ``question`` followed by ``A:``."""
        out: list[int] = []
        for p in _pieces(question):
            out += self.number(p) if p.isdigit() else [self.id(p)]
        return [*out, self.id("A:")]

    def render(self, question: str) -> str:
        """The prompt as space-separated tokens (what the champion's HF tokenizer reads)."""
        return " ".join(self.tokens[i] for i in self.prompt(question))

    def target(self, answer: str) -> list[int]:
        """Ids of the answer digits (reversed) and ``<eos>``; answers are non-negative ints."""
        if not answer.isdigit():
            raise DataValidationError(
                f"digit encoding: answer {answer!r} is not a non-negative integer; this model "
                "writes digits only (filter negative answers out of user data)."
            )
        return [*self.number(answer), self.id("<eos>")]

    def decode_answer(self, ids: Sequence[int]) -> str | None:
        """Generated ids → the integer string they encode, or None if malformed."""
        toks = [self.tokens[i] if 0 <= i < len(self.tokens) else "<unk>" for i in ids]
        if len(toks) < 3 or toks[0] != "<n>" or "</n>" not in toks:
            return None
        digits = toks[1 : toks.index("</n>")]
        if not digits or not all(t.isdigit() and len(t) == 1 for t in digits):
            return None
        return str(int("".join(reversed(digits))))

    def to_json(self) -> dict[str, Any]:
        """What the champion checkpoint stores beside its weights (``forge_vocab.json``)."""
        return {"encoding": "word-digit-lsb-v1", "tokens": list(self.tokens)}


@dataclass(frozen=True)
class DigitBatch:
    """Right-padded ids, labels (-100 outside answers) and each item's answer span."""

    ids: torch.Tensor
    labels: torch.Tensor
    spans: list[tuple[int, int]]


def encode(vocab: DigitVocab, items: Sequence[ArithmeticItem], *, max_len: int) -> DigitBatch:
    """Encode ``prompt + target``; prompts longer than ``max_len`` keep their last tokens.

    ``max_len`` is the model's context: a shorter context (the "speed" model) sees only
    the end of long problems — a real trade-off, not a formatting detail.
    """
    rows, spans = [], []
    for it in items:
        prompt, target = vocab.prompt(it.question), vocab.target(it.answer)
        keep = max(1, max_len - len(target))
        prompt = prompt[-keep:]
        rows.append(prompt + target)
        spans.append((len(prompt), len(prompt) + len(target)))
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, (s, e)) in enumerate(zip(rows, spans, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, s:e] = ids[i, s:e]
    return DigitBatch(ids, labels, spans)


def make_llama(
    vocab: DigitVocab, *, hidden: int, layers: int, heads: int, seed: int, context: int = 128
) -> LlamaForCausalLM:
    """A randomly initialised Llama over ``vocab`` (size-agnostic: every size is a knob)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab.tokens), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=context, pad_token_id=0, bos_token_id=0,
        eos_token_id=vocab.id("<eos>"), tie_word_embeddings=False,
    )  # fmt: skip
    return LlamaForCausalLM(cfg)


def train_steps(
    model: torch.nn.Module,
    vocab: DigitVocab,
    items: Sequence[ArithmeticItem],
    *,
    steps: int,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    max_len: int = 128,
    weights: Sequence[float] | None = None,
    on_step: Any = None,
) -> list[float]:
    """AdamW + one-cycle schedule on answer-only loss; ``weights`` samples items unevenly."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    probs = None if weights is None else torch.tensor(list(weights), dtype=torch.float)
    model.train()
    losses = []
    for step in range(steps):
        if probs is None:
            idx = torch.randint(len(items), (batch,), generator=gen).tolist()
        else:
            idx = torch.multinomial(probs, batch, replacement=True, generator=gen).tolist()
        b = encode(vocab, [items[i] for i in idx], max_len=max_len)
        loss = model(input_ids=b.ids, labels=b.labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


def exact_match(
    model: torch.nn.Module,
    vocab: DigitVocab,
    items: Sequence[ArithmeticItem],
    *,
    max_len: int = 128,
    batch: int = 256,
) -> list[bool]:
    """Per item: greedy decoding would produce exactly the answer (module doc)."""
    out: list[bool] = []
    with torch.no_grad():
        for start in range(0, len(items), batch):
            b = encode(vocab, items[start : start + batch], max_len=max_len)
            pred = model(input_ids=b.ids).logits.argmax(-1)
            for i, (s, e) in enumerate(b.spans):
                out.append(bool((pred[i, s - 1 : e - 1] == b.ids[i, s:e]).all()))
    return out


def greedy_answers(
    model: torch.nn.Module,
    vocab: DigitVocab,
    items: Sequence[ArithmeticItem],
    *,
    max_len: int = 128,
    max_new: int = 8,
    batch: int = 256,
) -> list[str | None]:
    """Decode every item greedily and read the integer (``None`` if malformed).

    Batched over right-padded rows: under the causal mask, padding after a row's last
    token cannot change that row's next-token logits, so one forward per new token
    decodes the whole batch exactly as item-by-item decoding would.
    """
    out: list[str | None] = []
    eos = vocab.id("<eos>")
    with torch.no_grad():
        for start in range(0, len(items), batch):
            rows = [
                vocab.prompt(it.question)[-(max_len - max_new) :]
                for it in items[start : start + batch]
            ]
            gen: list[list[int]] = [[] for _ in rows]
            done = [False] * len(rows)
            for _ in range(max_new):
                seqs = [r + g for r, g in zip(rows, gen, strict=True)]
                ids = torch.zeros((len(seqs), max(len(x) for x in seqs)), dtype=torch.long)
                for i, x in enumerate(seqs):
                    ids[i, : len(x)] = torch.tensor(x)
                logits = model(input_ids=ids).logits
                last = torch.tensor([len(x) - 1 for x in seqs])
                nxt = logits[torch.arange(len(seqs)), last].argmax(-1).tolist()
                for i, t in enumerate(nxt):
                    if not done[i]:
                        if t == eos:
                            done[i] = True
                        else:
                            gen[i].append(t)
                if all(done):
                    break
            out += [vocab.decode_answer(g) for g in gen]
    return out


def answer_logits_features(
    model: torch.nn.Module,
    vocab: DigitVocab,
    items: Sequence[ArithmeticItem],
    *,
    max_len: int = 128,
) -> torch.Tensor:
    """Last-layer hidden state at the ``A:`` position per item (``n × hidden``; for CKA)."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(items), 256):
            b = encode(vocab, items[start : start + 256], max_len=max_len)
            hs = model(input_ids=b.ids, output_hidden_states=True).hidden_states[-1]
            rows += [hs[i, s - 1] for i, (s, _) in enumerate(b.spans)]
    return torch.stack(rows)
