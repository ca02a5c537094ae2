"""Offline vLLM engine backend (optional extra ``gate-harness[vllm]``; GPU machines).

vLLM is not installed in the default environment (it pins its own torch and
transformers); importing this module is always safe, constructing
:class:`VLLMGenerator` without vLLM raises :class:`BackendError` saying how to
get it.  For a *server* lane, run ``vllm serve <model>`` and point
:class:`~harness.backends.openai_compat.OpenAICompatGenerator` (model spec
``http://127.0.0.1:8000/v1#<model>``) at it — that path is tested here against
our own OpenAI-compatible server.

Seeds: each request's ``n`` samples use vLLM's per-request ``seed``, so a
request's output does not depend on the rest of the batch.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from harness.backends.base import (
    FinishReason,
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
    check_one_to_one,
    sha256_hex,
)
from harness.errors import BackendError

__all__ = ["VLLMGenerator", "vllm_available"]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class VLLMGenerator:
    """``vllm.LLM`` in-process; chat requests go through ``LLM.chat`` (the model's template)."""

    def __init__(self, model: str, *, dtype: str = "auto", **engine_kwargs: Any) -> None:
        if not vllm_available():
            raise BackendError(
                "VLLMGenerator needs vLLM, which is not installed here. Install the optional "
                "extra in its own environment (pip install 'gate-harness[vllm]'), or run "
                "`vllm serve` and use the OpenAI-compatible backend (model spec "
                "http://127.0.0.1:8000/v1#<model>)"
            )
        from vllm import LLM  # type: ignore[import-not-found]  # optional extra

        self._llm = LLM(model=model, dtype=dtype, **engine_kwargs)
        tok = self._llm.get_tokenizer()
        template = getattr(tok, "chat_template", None)
        self._identity = ModelIdentity(
            backend="vllm",
            name=model,
            tokenizer_digest=sha256_hex(repr(sorted(tok.get_vocab().items()))),
            chat_template_digest=sha256_hex(template) if isinstance(template, str) else None,
            dtype=str(self._llm.llm_engine.model_config.dtype).removeprefix("torch."),
        )

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        from vllm import SamplingParams as VSP

        out: list[Generation] = []
        for req in requests:  # per request: vLLM batches internally; keeps seeds per request
            sp = req.sampling
            vsp = VSP(
                n=sp.n,
                temperature=sp.temperature,
                top_p=sp.top_p,
                max_tokens=sp.max_tokens,
                seed=sp.seed,
                stop=list(sp.stop) or None,
            )
            t0 = time.perf_counter()
            if req.messages is not None:
                res = self._llm.chat(
                    [m.to_hf() for m in req.messages],
                    vsp,
                    tools=list(req.tools) or None,
                    use_tqdm=False,
                )
            else:
                res = self._llm.generate([req.prompt], vsp, use_tqdm=False)
            elapsed = time.perf_counter() - t0
            comp = res[0].outputs
            fins: list[FinishReason] = [
                "length" if c.finish_reason == "length" else "stop" for c in comp
            ]
            out.append(
                Generation(
                    request_id=req.request_id,
                    texts=tuple(c.text for c in comp),
                    finish_reasons=tuple(fins),
                    prompt_tokens=len(res[0].prompt_token_ids or []),
                    completion_tokens=tuple(len(c.token_ids) for c in comp),
                    latency=Latency(total_s=elapsed),
                    model=self._identity,
                    sampling=sp,
                )
            )
        check_one_to_one(requests, out, backend="vllm")
        return out
