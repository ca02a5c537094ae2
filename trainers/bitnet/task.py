"""The embedded accuracy task: two-digit addition, answer written least-significant digit first.

``"37+85="`` → ``"221"`` (122 reversed).  Writing the sum reversed makes each
output digit depend on one column and one carry, so a tiny Llama learns the
algorithm (not a lookup table) in a few hundred CPU steps and generalises to
operand pairs it never saw.  The 10,000 ordered pairs are split once, by a
seeded permutation, into disjoint ``train`` / ``dev`` / ``test`` sets: knobs
(the fallback decision) are chosen on ``dev`` and the gate judges ``test``.

Greedy exact match is computed in one teacher-forced forward pass: greedy
decoding reproduces the target iff the argmax at every answer position is the
target token (the first wrong argmax is exactly where greedy decoding would
diverge), so :func:`exact_match` equals generate-then-compare, without a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from transformers import LlamaForCausalLM

__all__ = [
    "ANSWER_LEN",
    "PROMPT_LEN",
    "VOCAB",
    "Split",
    "decode",
    "encode_items",
    "exact_match",
    "make_splits",
    "tiny_llama",
]

#: Token ids: digits 0-9, then ``+``, ``=``, BOS.
VOCAB = [*"0123456789", "+", "=", "<s>"]
_ID = {t: i for i, t in enumerate(VOCAB)}
BOS = _ID["<s>"]
PROMPT_LEN = 7  # <s> a a + b b =
ANSWER_LEN = 3  # three reversed digits of a + b (0 … 198)


@dataclass(frozen=True)
class Split:
    """Operand pairs of one split (``a``, ``b`` in 0 … 99)."""

    name: str
    a: np.ndarray
    b: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def item_ids(self) -> list[str]:
        return [
            f"{self.name}-{int(x):02d}+{int(y):02d}" for x, y in zip(self.a, self.b, strict=True)
        ]


def make_splits(*, seed: int, n_dev: int, n_test: int) -> dict[str, Split]:
    """Disjoint train/dev/test operand pairs from one seeded permutation of all 10,000."""
    perm = np.random.default_rng(seed).permutation(10_000)
    parts = {
        "dev": perm[:n_dev],
        "test": perm[n_dev : n_dev + n_test],
        "train": perm[n_dev + n_test :],
    }
    return {k: Split(k, v // 100, v % 100) for k, v in parts.items()}


def encode_items(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, PROMPT_LEN + ANSWER_LEN)`` int64 token ids: prompt then reversed answer."""
    s = a + b
    cols = [
        np.full_like(a, BOS),
        a // 10,
        a % 10,
        np.full_like(a, _ID["+"]),
        b // 10,
        b % 10,
        np.full_like(a, _ID["="]),
        s % 10,
        (s // 10) % 10,
        s // 100,
    ]
    return np.stack(cols, axis=1).astype(np.int64)


def decode(ids: list[int]) -> str:
    """Token ids back to text (for raw outputs in evidence)."""
    return "".join(VOCAB[i] if 0 <= i < len(VOCAB) else "?" for i in ids)


def exact_match(model: torch.nn.Module, ids: torch.Tensor, *, batch: int = 512) -> np.ndarray:
    """Per item: 1 if greedy decoding yields the whole answer, else 0 (teacher-forced argmax)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            logits = model(input_ids=chunk[:, :-1]).logits
            pred = logits[:, PROMPT_LEN - 1 :, :].argmax(-1)
            out.append((pred == chunk[:, PROMPT_LEN:]).all(dim=1).to(torch.int64).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def predictions(model: torch.nn.Module, ids: torch.Tensor) -> list[str]:
    """The greedy answers (teacher-forced argmax; equal to greedy decoding where correct)."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=ids[:, :-1]).logits
    pred = logits[:, PROMPT_LEN - 1 :, :].argmax(-1)
    return [decode(row.tolist()) for row in pred]


def tiny_llama(
    *, hidden: int, layers: int, heads: int, intermediate: int, seed: int
) -> LlamaForCausalLM:
    """A randomly initialised Llama over :data:`VOCAB` (the model the task trains)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=16,
        bos_token_id=BOS,
        eos_token_id=BOS,
        pad_token_id=BOS,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)
