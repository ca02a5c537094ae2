"""Sampling thoughts after the input, and answering with them (the user-visible path).

:func:`sample_thoughts` continues ``prompt + [thinking]`` token by token (KV cache) until
``[/endthinking]`` or ``max_len`` content tokens (then the end marker is appended);
:func:`sample_thoughts_batch` does the same for many prefixes at once (Step 2 samples
thoughts after several input positions of several problems in one batch).
Thought tokens are drawn from every token except ``<pad>``, ``<eos>``, ``A:`` and the
start marker; ``temperature=0`` is greedy.  :func:`answer_with_thought` is inference as
a user sees it: a greedy thought, then the answer decoded token by token from the
mixed distribution (base and post-thought streams each keep a KV cache); the returned
text is decoded from answer tokens only, which by construction exclude the 12 thought
tokens (:mod:`trainers.quiet_star.mixing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainers.quiet_star.mixing import MixingHead
from trainers.quiet_star.sequences import Vocab, visible_mask

__all__ = [
    "Answer",
    "answer_with_thought",
    "banned_in_thought",
    "number_text",
    "sample_thoughts",
    "sample_thoughts_batch",
]


def banned_in_thought(vocab: Vocab) -> torch.Tensor:
    """Boolean (V,): tokens a thought may not contain."""
    mask = torch.zeros(vocab.size, dtype=torch.bool)
    mask[[vocab.pad, vocab.eos, vocab.answer_sep, vocab.start]] = True
    return mask


def sample_thoughts(
    model: nn.Module,
    prompt: Sequence[int],
    vocab: Vocab,
    *,
    k: int,
    max_len: int,
    temperature: float,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """``k`` thought contents for one prompt (each ends with the end marker)."""
    return sample_thoughts_batch(
        model, [prompt], vocab, k=k, max_len=max_len, temperature=temperature,
        generator=generator,
    )[0]  # fmt: skip


@torch.no_grad()
def sample_thoughts_batch(
    model: nn.Module,
    prefixes: Sequence[Sequence[int]],
    vocab: Vocab,
    *,
    k: int,
    max_len: int,
    temperature: float,
    generator: torch.Generator | None = None,
) -> list[list[list[int]]]:
    """``k`` thoughts after each of ``prefixes`` (Quiet-STaR's parallel generation).

    All ``len(prefixes) · k`` rows decode together: prefixes of different lengths are
    left-padded (attention mask and explicit position ids, so each row sees exactly its
    own prefix), one KV cache for the batch.
    """
    banned = banned_in_thought(vocab)
    rows = [[*p, vocab.start] for p in prefixes for _ in range(k)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), vocab.pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r)
        att[i, width - len(r) :] = 1
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=True)
    past, logits, last = out.past_key_values, out.logits[:, -1], pos[:, -1:]
    seqs: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    for _ in range(max_len):
        logits = logits.masked_fill(banned, float("-inf"))
        if temperature <= 0:
            nxt = logits.argmax(-1)
        else:
            probs = F.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                seqs[i].append(int(t))
                done[i] = int(t) == vocab.end
        if all(done):
            break
        att = torch.cat([att, torch.ones((len(rows), 1), dtype=torch.long)], dim=-1)
        last = last + 1
        out = model(
            input_ids=nxt[:, None], attention_mask=att, position_ids=last,
            past_key_values=past, use_cache=True,
        )  # fmt: skip
        past, logits = out.past_key_values, out.logits[:, -1]
    ended = [s if s and s[-1] == vocab.end else [*s, vocab.end] for s in seqs]
    return [ended[i * k : (i + 1) * k] for i in range(len(prefixes))]


@dataclass(frozen=True)
class Answer:
    """What the user sees (``text``) and what stays hidden (thought ids, mixing weights)."""

    text: str
    answer_ids: list[int]
    thought_ids: list[int]
    weights: list[float]


def _step(model: nn.Module, ids: torch.Tensor, past: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    out = model(input_ids=ids, past_key_values=past, use_cache=True, output_hidden_states=True)
    return out.past_key_values, out.logits[0, -1], out.hidden_states[-1][0, -1]


@torch.no_grad()
def answer_with_thought(
    model: nn.Module,
    head: MixingHead,
    prompt: Sequence[int],
    vocab: Vocab,
    *,
    max_thought: int,
    max_answer: int = 8,
) -> Answer:
    """Greedy thought, then greedy answer from the mixed distribution (module doc)."""
    thought = sample_thoughts(model, prompt, vocab, k=1, max_len=max_thought, temperature=0)[0]
    hidden = visible_mask(vocab)
    pb, lb, hb = _step(model, torch.tensor([list(prompt)]), None)
    pp, lp, hp = _step(model, torch.tensor([[*prompt, vocab.start, *thought]]), None)
    answer: list[int] = []
    weights: list[float] = []
    for _ in range(max_answer):
        w = head(hb, hp)
        logp_b = F.log_softmax(lb.masked_fill(hidden, float("-inf")), -1).masked_fill(hidden, 0)
        logp_p = F.log_softmax(lp.masked_fill(hidden, float("-inf")), -1).masked_fill(hidden, 0)
        mixed = (w * logp_p + (1 - w) * logp_b).masked_fill(hidden, float("-inf"))
        nxt = int(mixed.argmax())
        weights.append(float(w))
        if nxt == vocab.eos:
            break
        answer.append(nxt)
        step = torch.tensor([[nxt]])
        pb, lb, hb = _step(model, step, pb)
        pp, lp, hp = _step(model, step, pp)
    return Answer(number_text(vocab.tokens(answer)), answer, thought, weights)


def number_text(toks: Sequence[str]) -> str:
    """Answer pieces → the text a user sees: ``<n> 4 1 </n>`` → ``"14"``; else the pieces."""
    if len(toks) >= 3 and toks[0] == "<n>" and toks[-1] == "</n>":
        digits = toks[1:-1]
        if all(len(d) == 1 and d.isdigit() for d in digits):
            return str(int("".join(reversed(digits))))
    return " ".join(toks)
