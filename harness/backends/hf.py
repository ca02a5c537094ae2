"""Local transformers backend: batched, left-padded, seeded, with a content-pinned identity.

Why the sampling is done here rather than by ``generate(do_sample=True)``:
transformers samples from the process-global RNG, so a request's sample would
depend on which other requests shared its batch.  We give every row (request ×
sample index) its own ``torch.Generator`` seeded from ``(seed, index)`` and pick
the token in a logits processor; ``generate`` then runs greedy over the one-hot
result.  A request's output therefore depends only on the request, its
sampling params and the model — which is what the cache and the replay lane key on.

Text conventions: generation stops at any of the model's eos ids
(``generation_config.eos_token_id``).  ``<|eot_id|>``/``<|end_of_text|>`` are
stripped from the text; an ``<|eom_id|>`` stop (end of a tool call) is *kept*
and reported as finish reason ``tool_call``, so strict tool-call format checks
see the exact ``<|python_tag|>{json}<|eom_id|>`` the model produced.  Other
special tokens the model emits stay in the text (they are part of what it said).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from harness.backends.base import (
    FinishReason,
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
    SamplingParams,
    check_one_to_one,
    sha256_hex,
)
from harness.errors import BackendError

__all__ = [
    "HFGenerator",
    "SamplerKind",
    "quiet_progress",
    "render_prompt_ids",
    "weights_digest_of_dir",
]

#: How a chunk's next tokens are picked; both give identical tokens (see ``_BatchedSampler``).
SamplerKind = Literal["batched", "rowwise"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_KEEP_STOP_TOKENS = ("<|eom_id|>",)


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers' per-load/save progress bars (noise in logs), then restore."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def weights_digest_of_dir(path: Path) -> str:
    """sha256 over (relative name, bytes) of every weight file in a checkpoint directory."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise BackendError(
            f"{path}: no weight files (*.safetensors / *.bin) found; is this a model directory?"
        )
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _weights_digest_of_model(model: Any) -> str:
    """sha256 over every parameter/buffer (name, dtype, shape, raw bytes) of an in-memory model."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _tokenizer_digest(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    special = repr(sorted((str(k), str(v)) for k, v in tokenizer.special_tokens_map.items()))
    return sha256_hex(body + "\n" + special + "\n" + str(tokenizer.padding_side))


def _row_seed(seed: int, index: int) -> int:
    return int(sha256_hex(f"{seed}:{index}")[:15], 16)


@dataclass
class _Row:
    req: int
    sample: int
    ids: list[int]
    temperature: float
    top_p: float
    seed: int


@dataclass
class _RowResult:
    text: str
    finish: FinishReason
    tokens: int


@dataclass
class _ReqTiming:
    prompt_tokens: int = 0
    total_s: float = 0.0
    ttft_s: float | None = None
    rows: dict[int, _RowResult] = field(default_factory=dict)


class _RowwiseSampler:
    """Reference logits processor: one row at a time (softmax, top-p sort, ``multinomial``).

    This was the production sampler until per-row Python work was measured at
    about half of generation time on the tiny CPU models.  It stays as the
    *oracle*: :class:`_BatchedSampler` must pick bit-for-bit the same tokens
    (tests compare them on random logits and on real generations), and
    ``benchmarks/hf_throughput.py --sampler rowwise`` measures the speed-up
    against it in the same run.
    """

    def __init__(self, rows: Sequence[_Row]) -> None:
        import torch

        self._torch = torch
        self.rows = rows
        self.gens = [
            None if r.temperature == 0.0 else torch.Generator().manual_seed(r.seed) for r in rows
        ]
        self.first_call: float | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self._torch
        if self.first_call is None:
            self.first_call = time.perf_counter()
        # Every row leaves with exactly one finite logit, so whatever generate() does next
        # (argmax, or warpers from a config) picks the token chosen here.
        out = torch.full_like(scores, float("-inf"))
        for i, (row, gen) in enumerate(zip(self.rows, self.gens, strict=True)):
            if gen is None:
                out[i, int(torch.argmax(scores[i]).item())] = 0.0
                continue
            probs = torch.softmax(scores[i].float().cpu() / row.temperature, dim=-1)
            if row.top_p < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                cum = torch.cumsum(sorted_p, dim=-1)
                drop = (cum - sorted_p) >= row.top_p  # keep the smallest prefix reaching top_p
                sorted_p[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
            token = int(torch.multinomial(probs, 1, generator=gen).item())
            out[i, token] = 0.0
        return out


class _BatchedSampler:
    """Logits processor: temperature/top-p sampling for all rows of a step in a few array ops.

    Only the random draw stays per row, because each row owns its
    ``torch.Generator`` (that is what makes a request's output independent of
    its batch).  The draw reproduces ``torch.multinomial(p, 1, generator=g)``
    exactly: for one sample PyTorch computes ``argmax(p / q)`` with
    ``q = empty_like(p).exponential_(1, generator=g)`` (the exponential form of
    the Gumbel-max trick).  We fill row ``i`` of ``q`` from generator ``i`` —
    the same draws, in the same order, as the row-wise reference — and do the
    softmax, top-p cut, division and argmax once for the whole batch, so
    outputs (and cached generations) are unchanged.

    The top-p cut was the other half of the cost (``torch.sort`` with indices
    is slow on CPU); see :meth:`_nucleus` for how it stays exact without it.
    """

    def __init__(self, rows: Sequence[_Row]) -> None:
        import torch

        self._torch = torch
        self.rows = rows
        self.first_call: float | None = None
        sampled = [i for i, r in enumerate(rows) if r.temperature != 0.0]
        self._all_greedy = not sampled
        self._all_sampled = len(sampled) == len(rows)
        self._sampled = torch.tensor(sampled, dtype=torch.long)
        self._gens = [torch.Generator().manual_seed(rows[i].seed) for i in sampled]
        self._temps = torch.tensor([[rows[i].temperature] for i in sampled], dtype=torch.float32)
        nucleus = [j for j, i in enumerate(sampled) if rows[i].top_p < 1.0]
        self._all_nucleus = len(nucleus) == len(sampled)
        self._nucleus_rows = torch.tensor(nucleus, dtype=torch.long)
        self._top_p = torch.tensor([[rows[sampled[j]].top_p] for j in nucleus]).numpy()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self._torch
        if self.first_call is None:
            self.first_call = time.perf_counter()
        if self._all_greedy:
            tokens = torch.argmax(scores, dim=-1)
        elif self._all_sampled:
            tokens = self._sample(scores).to(scores.device)
        else:
            index = self._sampled.to(scores.device)
            tokens = torch.argmax(scores, dim=-1)  # the greedy rows' choice
            tokens[index] = self._sample(scores.index_select(0, index)).to(scores.device)
        # Every row leaves with exactly one finite logit, so whatever generate() does next
        # (argmax, or warpers from a config) picks the token chosen here.
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens.unsqueeze(1), 0.0)
        return out

    def _sample(self, logits: Any) -> Any:
        torch = self._torch
        # Row-wise the temperature was a Python float; torch divides a float32 tensor by it
        # as a float32 scalar, exactly what dividing by this float32 column does.
        probs = torch.softmax(logits.float().cpu() / self._temps, dim=-1)
        if len(self._nucleus_rows):
            if self._all_nucleus:
                probs = self._nucleus(probs)
            else:
                sub = probs.index_select(0, self._nucleus_rows)
                probs[self._nucleus_rows] = self._nucleus(sub)
        q = torch.empty_like(probs)
        for row, gen in enumerate(self._gens):
            q[row].exponential_(1, generator=gen)
        return torch.argmax(probs / q, dim=-1)

    def _nucleus(self, probs: Any) -> Any:
        """Zero every token outside each row's top-p nucleus, exactly as the reference does.

        The reference sorts (values *and* token ids), takes the cumulative sum
        of the sorted values and keeps sorted position ``j`` while
        ``cum[j] - p[j] < top_p``.  The sorted *values*, their cumulative
        sums and so the kept positions do not depend on how ties are ordered,
        so we sort values only, with numpy (several times faster than
        ``torch.sort``).  When the kept positions are a prefix ``0..b`` and the
        value at ``b`` is strictly above the next one, the kept tokens are
        exactly those with ``p >= p[b]`` — whichever order a sort put ties in.
        Otherwise (a tie straddling the cut, or a non-prefix mask from
        rounding) that row takes the reference's own ``torch.sort`` path.
        """
        import numpy as np

        torch = self._torch
        p = probs.numpy()
        rows, vocab = p.shape
        values = np.ascontiguousarray(np.sort(p, axis=-1)[:, ::-1])
        cum = torch.cumsum(torch.from_numpy(values), dim=-1).numpy()
        drop = (cum - values) >= self._top_p
        kept = vocab - drop.sum(axis=-1)  # >= 1: position 0 is always kept
        at = np.arange(rows)
        last = values[at, kept - 1]
        after = values[at, np.minimum(kept, vocab - 1)]
        prefix = ~np.any(drop[:, :-1] & ~drop[:, 1:], axis=-1)  # no kept position after a drop
        clean = prefix & ((kept == vocab) | (after < last))
        out = torch.from_numpy(np.where(p < last[:, None], np.float32(0.0), p))
        for row in np.flatnonzero(~clean).tolist():
            sorted_p, order = torch.sort(probs[row], descending=True)
            sorted_p = sorted_p.masked_fill(torch.from_numpy(drop[row].copy()), 0.0)
            out[row] = torch.zeros_like(sorted_p).scatter(0, order, sorted_p)
        return out


_SAMPLERS: dict[SamplerKind, type[_RowwiseSampler] | type[_BatchedSampler]] = {
    "batched": _BatchedSampler,
    "rowwise": _RowwiseSampler,
}


class HFGenerator:
    """transformers causal-LM backend (CPU here; CUDA when present)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        batch_size: int = 8,
        weights_digest: str | None = None,
        revision: str | None = None,
        sampler: SamplerKind = "batched",
    ) -> None:
        if batch_size < 1:
            raise BackendError(f"HFGenerator: batch_size={batch_size} must be >= 1")
        if sampler not in get_args(SamplerKind):
            raise BackendError(
                f"HFGenerator: sampler={sampler!r}; use one of {', '.join(get_args(SamplerKind))}"
            )
        if tokenizer.pad_token_id is None:
            raise BackendError(
                f"HFGenerator({name}): tokenizer has no pad token; set tokenizer.pad_token "
                "(e.g. to the eos token) before batching"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # "rowwise" is the slower reference implementation (same tokens); not part of the
        # identity because it cannot change an output.
        self.sampler: SamplerKind = sampler
        self.device = next(model.parameters()).device
        eos = model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        self._stop_ids = set(eos_ids)
        # Sampling is ours alone: a checkpoint's generation_config.json (do_sample, temperature,
        # repetition_penalty, ...) must not leak in, so keep only the special-token ids.
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
            bos_token_id=model.generation_config.bos_token_id,
            eos_token_id=sorted(self._stop_ids),
            pad_token_id=tokenizer.pad_token_id,
        )
        self._keep_ids = {
            tokenizer.convert_tokens_to_ids(t)
            for t in _KEEP_STOP_TOKENS
            if t in tokenizer.get_vocab()
        }
        template = getattr(tokenizer, "chat_template", None)
        self._identity = ModelIdentity(
            backend="hf",
            name=name,
            revision=revision,
            weights_digest=weights_digest or _weights_digest_of_model(model),
            tokenizer_digest=_tokenizer_digest(tokenizer),
            chat_template_digest=sha256_hex(template) if isinstance(template, str) else None,
            dtype=str(model.dtype).removeprefix("torch."),
            extra={"stop_token_ids": ",".join(map(str, sorted(self._stop_ids)))},
        )

    @classmethod
    def from_pretrained(
        cls,
        path: Path | str,
        *,
        name: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
    ) -> HFGenerator:
        """Load a local checkpoint directory; ``dtype='auto'`` = bf16 on CUDA, float32 on CPU."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = Path(path)
        if not (p / "config.json").is_file():
            raise BackendError(
                f"{p}: not a model directory (no config.json). Build one with "
                "`harness models build tiny-code --out {p}` or pass a transformers checkpoint"
            )
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
        else:
            try:
                torch_dtype = getattr(torch, dtype)
            except AttributeError:
                raise BackendError(
                    f"HFGenerator: unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16"
                ) from None
        tokenizer = AutoTokenizer.from_pretrained(p)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        with quiet_progress():
            model: Any = AutoModelForCausalLM.from_pretrained(p, dtype=torch_dtype)
        model = model.to(dev)
        model.eval()
        return cls(
            model,
            tokenizer,
            name=name or p.resolve().name,
            batch_size=batch_size,
            weights_digest=weights_digest_of_dir(p),
        )

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    # ------------------------------------------------------------------ rendering

    def render(self, request: GenerationRequest) -> list[int]:
        """Token ids of the prompt exactly as the model sees it."""
        return render_prompt_ids(self.tokenizer, request, model=self._identity.name)

    # ------------------------------------------------------------------ generation

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        rows: list[_Row] = []
        timings = [_ReqTiming() for _ in requests]
        for ri, req in enumerate(requests):
            ids = self.render(req)
            timings[ri].prompt_tokens = len(ids)
            sp = req.sampling
            # greedy samples are identical: compute once, replicate below
            for si in range(1 if sp.greedy else sp.n):
                rows.append(_Row(ri, si, ids, sp.temperature, sp.top_p, _row_seed(sp.seed, si)))
        groups: dict[tuple[int, tuple[str, ...]], list[_Row]] = {}
        for row in rows:
            sp = requests[row.req].sampling
            groups.setdefault((sp.max_tokens, sp.stop), []).append(row)
        for (max_tokens, stop), group in groups.items():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                self._run_chunk(chunk, max_tokens=max_tokens, stop=stop, timings=timings)
        out = [self._assemble(req, timing) for req, timing in zip(requests, timings, strict=True)]
        check_one_to_one(requests, out, backend=f"hf:{self._identity.name}")
        return out

    def _run_chunk(
        self,
        chunk: list[_Row],
        *,
        max_tokens: int,
        stop: tuple[str, ...],
        timings: list[_ReqTiming],
    ) -> None:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        tok = self.tokenizer
        width = max(len(r.ids) for r in chunk)
        pad = tok.pad_token_id
        input_ids = torch.tensor(
            [[pad] * (width - len(r.ids)) + r.ids for r in chunk], device=self.device
        )
        mask = torch.tensor(
            [[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in chunk], device=self.device
        )
        # A one-row chunk has nothing to batch: the row-wise reference (same tokens) runs
        # fewer tensor ops per step there (benchmarks/hf_throughput.py measures both).
        sampler = _SAMPLERS["rowwise" if len(chunk) == 1 else self.sampler](chunk)
        gen_cfg = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(self._stop_ids),
            pad_token_id=pad,
            stop_strings=list(stop) or None,
        )
        t0 = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=gen_cfg,
                logits_processor=LogitsProcessorList([sampler]),
                tokenizer=tok if stop else None,
            )
        elapsed = time.perf_counter() - t0
        ttft = None if sampler.first_call is None else sampler.first_call - t0
        new = output[:, width:].tolist()
        seen: set[int] = set()
        for row, toks in zip(chunk, new, strict=True):
            timing = timings[row.req]
            if row.req not in seen:
                seen.add(row.req)
                if timing.ttft_s is None and ttft is not None:
                    timing.ttft_s = timing.total_s + ttft
                timing.total_s += elapsed
            timing.rows[row.sample] = self._decode(toks, max_tokens=max_tokens, stop=stop)

    def _decode(self, toks: list[int], *, max_tokens: int, stop: tuple[str, ...]) -> _RowResult:
        pad = self.tokenizer.pad_token_id
        stop_at = next((i for i, t in enumerate(toks) if t in self._stop_ids), None)
        finish: FinishReason
        if stop_at is not None:
            count = stop_at + 1
            if toks[stop_at] in self._keep_ids:
                kept, finish = toks[:count], "tool_call"
            else:
                kept, finish = toks[:stop_at], "stop"
        else:
            # a row ended by a stop string is padded afterwards by generate()
            count = len(toks)
            while count and toks[count - 1] == pad:
                count -= 1
            kept = toks[:count]
            finish = "length" if count >= max_tokens else "stop"
        text = self.tokenizer.decode(
            kept, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        if stop:
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return _RowResult(text=text, finish=finish, tokens=count)

    def _assemble(self, req: GenerationRequest, timing: _ReqTiming) -> Generation:
        sp: SamplingParams = req.sampling
        results = [timing.rows[0]] * sp.n if sp.greedy else [timing.rows[i] for i in range(sp.n)]
        return Generation(
            request_id=req.request_id,
            texts=tuple(r.text for r in results),
            finish_reasons=tuple(r.finish for r in results),
            prompt_tokens=timing.prompt_tokens,
            completion_tokens=tuple(r.tokens for r in results),
            latency=Latency(total_s=timing.total_s, ttft_s=timing.ttft_s),
            model=self._identity,
            sampling=sp,
            lane="real",
        )


def render_prompt_ids(
    tokenizer: Any, request: GenerationRequest, *, model: str | None = None
) -> list[int]:
    """Token ids of the prompt exactly as the model sees it (chat template for messages).

    One renderer for every local backend (transformers, vLLM offline), so the same request
    is the same token sequence whichever engine serves it.
    """
    if request.messages is None:
        assert request.prompt is not None
        return list(tokenizer(request.prompt, add_special_tokens=True)["input_ids"])
    if not getattr(tokenizer, "chat_template", None):
        who = f"model {model!r}" if model else "the model"
        raise BackendError(
            f"request {request.request_id!r}: {who} has no chat template; send prompt= "
            "instead of messages="
        )
    try:
        text = tokenizer.apply_chat_template(
            [m.to_hf() for m in request.messages],
            tools=list(request.tools) or None,
            add_generation_prompt=True,
            tokenize=False,
        )
    except Exception as exc:  # jinja TemplateError and friends
        template = f"chat template of {model!r}" if model else "the chat template"
        raise BackendError(
            f"request {request.request_id!r}: {template} rejected the messages: {exc}"
        ) from exc
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
