"""A character-level tiny Llama on the arithmetic word problems (headroom probe for Cognate).

Why characters: the generated problems use a small fixed alphabet, so a char vocab
needs no tokenizer training and keeps numbers digit-by-digit.  An item is encoded as
``question + " A: " + answer + "\\n"``; training puts loss on the answer characters and
the closing newline only.  :func:`exact_match` uses one teacher-forced forward pass:
greedy decoding reproduces ``answer + "\\n"`` iff the argmax at every answer position is
the target character, so it equals generate-then-compare without a decode loop.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harness.data.arithmetic import ArithmeticItem
from harness.errors import DataValidationError

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

__all__ = ["VOCAB", "CharBatch", "encode", "exact_match", "tiny_char_llama", "train_steps"]

VOCAB = ["<pad>", *sorted(set(string.ascii_letters + string.digits + " .,?:'-\n$"))]
_ID = {c: i for i, c in enumerate(VOCAB)}
PAD = 0
SEP = " A: "


@dataclass(frozen=True)
class CharBatch:
    """Right-padded ids, labels (-100 outside answers) and each item's answer span."""

    ids: torch.Tensor
    labels: torch.Tensor
    spans: list[tuple[int, int]]


def encode(items: Sequence[ArithmeticItem]) -> CharBatch:
    """Encode items (see module doc); unknown characters are an error naming the item."""
    rows, spans = [], []
    for it in items:
        prompt, target = it.question + SEP, it.answer + "\n"
        bad = sorted(set(prompt + target) - set(_ID))
        if bad:
            raise DataValidationError(f"char encoding: item {it.question[:40]!r} has {bad}.")
        rows.append([_ID[c] for c in prompt + target])
        spans.append((len(prompt), len(prompt) + len(target)))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, (s, e)) in enumerate(zip(rows, spans, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, s:e] = ids[i, s:e]
    return CharBatch(ids, labels, spans)


def tiny_char_llama(*, hidden: int, layers: int, heads: int, seed: int) -> LlamaForCausalLM:
    """A randomly initialised Llama over :data:`VOCAB`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(VOCAB), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, pad_token_id=PAD, bos_token_id=PAD, eos_token_id=PAD,
    )  # fmt: skip
    return LlamaForCausalLM(cfg)


def train_steps(
    model: torch.nn.Module,
    items: Sequence[ArithmeticItem],
    *,
    steps: int,
    batch: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """AdamW on answer-only loss for ``steps`` minibatches; returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(items), (batch,), generator=gen).tolist()
        b = encode([items[i] for i in idx])
        loss = model(input_ids=b.ids, labels=b.labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def exact_match(
    model: torch.nn.Module, items: Sequence[ArithmeticItem], *, batch: int = 128
) -> list[bool]:
    """Per item: greedy decoding would produce exactly ``answer + "\\n"`` (module doc)."""
    out: list[bool] = []
    with torch.no_grad():
        for start in range(0, len(items), batch):
            b = encode(items[start : start + batch])
            pred = model(input_ids=b.ids).logits.argmax(-1)
            for i, (s, e) in enumerate(b.spans):
                out.append(bool((pred[i, s - 1 : e - 1] == b.ids[i, s:e]).all()))
    return out
