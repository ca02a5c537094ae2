"""Batch-1 greedy decode timing, interleaved across model formats, and memory bandwidth.

Decode at batch 1 reads every weight once per generated token, so its speed is
set by bytes moved per token over memory bandwidth.  :func:`interleaved_decode`
runs the *same* prompts through every format, rotating the order per prompt so
machine load (the CPU is shared) hits all formats alike; the gate pairs the
formats by prompt.  :func:`measure_bandwidth` reads a large buffer to put the
achieved bytes/s of each format next to what the machine can do.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from trainers.bitnet.kernel import PackedTernaryLinear, set_threads
from trainers.bitnet.packing import to_packed_kernels
from trainers.bitnet.quant import ternary_linears, to_bitlinear

__all__ = [
    "DecodeTiming",
    "bytes_per_token",
    "greedy_decode",
    "interleaved_decode",
    "measure_bandwidth",
    "packed_copy",
    "summary",
    "wide_random_llama",
]


@dataclass
class DecodeTiming:
    """Per prompt: seconds per decoded token (after prefill), and the generated ids."""

    seconds_per_token: list[float] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)

    def tokens_per_second(self) -> list[float]:
        return [1.0 / s for s in self.seconds_per_token]


def greedy_decode(
    model: nn.Module, prompt: torch.Tensor, new_tokens: int
) -> tuple[float, list[int]]:
    """Greedy-decode ``new_tokens`` after ``prompt`` (1, L) with a KV cache.

    Returns the mean wall seconds per token of the decode steps (prefill
    excluded: it is a batched matmul, not the batch-1 GEMV regime) and the ids.
    """
    if new_tokens < 2:
        raise ValueError("new_tokens must be ≥ 2 (one prefill step + ≥ 1 timed decode step)")
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        ids = [int(nxt)]
        t0 = time.perf_counter()
        for _ in range(new_tokens - 1):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            ids.append(int(nxt))
        elapsed = time.perf_counter() - t0
    return elapsed / (new_tokens - 1), ids


def interleaved_decode(
    models: Mapping[str, nn.Module],
    prompts: Sequence[torch.Tensor],
    *,
    new_tokens: int,
    threads: int,
    warmup: int = 1,
    between: Callable[[], None] | None = None,
) -> dict[str, DecodeTiming]:
    """Decode every prompt with every model, rotating the model order per prompt.

    ``between`` is called after each prompt's round (outside the timed decodes), e.g.
    to sample the machine's load (:class:`harness.machine_load.LoadMonitor`).
    """
    torch.set_num_threads(threads)
    set_threads(threads)
    names = list(models)
    for name in names:  # JIT / allocator warm-up, not timed
        for prompt in prompts[:warmup]:
            greedy_decode(models[name], prompt, 2)
    timings = {name: DecodeTiming() for name in names}
    for i, prompt in enumerate(prompts):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            spt, ids = greedy_decode(models[name], prompt, new_tokens)
            timings[name].seconds_per_token.append(spt)
            timings[name].tokens.append(ids)
        if between is not None:
            between()
    return timings


def measure_bandwidth(*, mbytes: int = 512, repeats: int = 5, threads: int = 1) -> float:
    """Best-of-``repeats`` read bandwidth in GB/s: summing a ``mbytes`` float32 buffer."""
    torch.set_num_threads(threads)
    buf = torch.ones(mbytes * 2**20 // 4, dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        float(buf.sum())
        best = min(best, time.perf_counter() - t0)
    return buf.numel() * 4 / best / 1e9


def bytes_per_token(model: nn.Module) -> int:
    """Weight bytes one decode step reads: every linear/embedding row used, in its own format.

    Linear layers are read whole; of an embedding only one row.  Packed ternary
    layers count their packed bytes plus the float32 scale.
    """
    total = 0
    for mod in model.modules():
        if isinstance(mod, PackedTernaryLinear):
            total += mod.packed.nbytes + 4
        elif isinstance(mod, nn.Linear):
            total += mod.weight.numel() * mod.weight.element_size()
        elif isinstance(mod, nn.Embedding):
            total += mod.weight.shape[1] * mod.weight.element_size()
    return total


def packed_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ternarizable linears are packed 2-bit kernel layers."""
    q = copy.deepcopy(model)
    to_bitlinear(q, ternary_linears(q))
    q.eval()
    return to_packed_kernels(q)


def wide_random_llama(
    *, hidden: int, intermediate: int, layers: int, heads: int, vocab: int, seed: int
) -> nn.Module:
    """A RANDOMLY INITIALISED Llama of realistic width, for decode speed only (never trained)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def summary(
    timings: Mapping[str, DecodeTiming], bytes_by_format: Mapping[str, int]
) -> dict[str, Any]:
    """Median ms/token, achieved GB/s and tokens/s per format (for evidence and reports)."""
    out: dict[str, Any] = {}
    for name, t in timings.items():
        med = float(np.median(t.seconds_per_token))
        out[name] = {
            "median_ms_per_token": med * 1e3,
            "median_tokens_per_s": 1.0 / med,
            "bytes_per_token": bytes_by_format[name],
            "achieved_GBps": bytes_by_format[name] / med / 1e9,
        }
    return out
