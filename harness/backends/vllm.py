"""Offline vLLM engine backend (optional extra ``gate-harness[vllm]``; GPU machines).

vLLM is not installed in the default environment (it pins its own torch and
transformers); importing this module is always safe, constructing
:class:`VLLMGenerator` without vLLM raises :class:`BackendError` saying how to
get it.  For a *server* lane, run ``vllm serve <model>`` and point
:class:`~harness.backends.openai_compat.OpenAICompatGenerator` (model spec
``http://127.0.0.1:8000/v1#<model>``) at it — that path is tested here against
our own OpenAI-compatible server.

* **One engine call per batch.**  :meth:`VLLMGenerator.generate` renders every
  request to token ids (chat requests through the tokenizer's own chat
  template, as :class:`~harness.backends.hf.HFGenerator` does) and sends them
  all in one ``LLM.generate`` with one ``SamplingParams`` per request, so vLLM's
  scheduler batches them; results come back in input order.  Each request
  keeps its own ``seed``, so its output does not depend on the rest of the
  batch.  Latency is the wall time of that one call (offline, vLLM does not
  expose per-request timing); latency gates should time a server lane instead.
* **Weights digest in the identity.**  The checkpoint's weight files are
  hashed (a local directory, or a hub id's snapshot already in the local
  cache), so the generation cache can never confuse two checkpoints served
  under one name.

:func:`shape_requests` is the pure request-shaping step (prompts + sampling
keyword arguments) and is unit-tested without vLLM.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from harness.backends.hf import render_prompt_ids, weights_digest_of_dir
from harness.errors import BackendError

__all__ = [
    "VLLMGenerator",
    "render_request",
    "resolve_weights_digest",
    "sampling_kwargs",
    "shape_requests",
    "vllm_available",
]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


#: the shared local-backend renderer (one token sequence per request on every engine)
render_request = render_prompt_ids


def sampling_kwargs(sp: SamplingParams) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (OpenAI stop semantics, per-request seed)."""
    return {
        "n": sp.n,
        "temperature": sp.temperature,
        "top_p": sp.top_p,
        "max_tokens": sp.max_tokens,
        "seed": sp.seed,
        "stop": list(sp.stop) or None,
    }


def shape_requests(
    tokenizer: Any, requests: Sequence[GenerationRequest]
) -> tuple[list[dict[str, list[int]]], list[dict[str, Any]]]:
    """One token prompt and one sampling-parameter dict per request, in request order."""
    prompts = [{"prompt_token_ids": render_request(tokenizer, r)} for r in requests]
    return prompts, [sampling_kwargs(r.sampling) for r in requests]


def resolve_weights_digest(model: str, *, revision: str | None = None) -> str:
    """sha256 of the checkpoint's weight files: a local directory or a locally cached hub id."""
    path = Path(model).expanduser()
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(model, revision=revision, local_files_only=True))
        except Exception as exc:  # not cached locally, no huggingface_hub, bad id
            raise BackendError(
                f"vllm:{model}: cannot digest its weights ({exc}); pass a local checkpoint "
                "directory (vllm:/path/to/model) or weights_digest=..., so the generation "
                "cache can tell checkpoints apart"
            ) from exc
    return weights_digest_of_dir(path)


class VLLMGenerator:
    """``vllm.LLM`` in-process; every call is one ``LLM.generate`` over all its requests.

    ``engine`` lets a caller pass an already-built ``LLM`` (or a stand-in in tests);
    ``weights_digest`` skips hashing when the caller already knows it.
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        revision: str | None = None,
        weights_digest: str | None = None,
        engine: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        if engine is None:
            if not vllm_available():
                raise BackendError(
                    "VLLMGenerator needs vLLM, which is not installed here. Install the "
                    "optional extra in its own environment (pip install 'gate-harness[vllm]'), "
                    "or run `vllm serve` and use the OpenAI-compatible backend (model spec "
                    "http://127.0.0.1:8000/v1#<model>)"
                )
            from vllm import LLM  # type: ignore[import-not-found,unused-ignore]  # optional

            engine = LLM(model=model, dtype=dtype, revision=revision, **engine_kwargs)
        self._llm = engine
        self.tokenizer = engine.get_tokenizer()
        template = getattr(self.tokenizer, "chat_template", None)
        self._identity = ModelIdentity(
            backend="vllm",
            name=model,
            revision=revision,
            weights_digest=weights_digest or resolve_weights_digest(model, revision=revision),
            tokenizer_digest=sha256_hex(repr(sorted(self.tokenizer.get_vocab().items()))),
            chat_template_digest=sha256_hex(template) if isinstance(template, str) else None,
            dtype=str(engine.llm_engine.model_config.dtype).removeprefix("torch."),
        )

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if not requests:
            return []
        from vllm import SamplingParams as VSP  # type: ignore[import-not-found,unused-ignore]

        prompts, kwargs = shape_requests(self.tokenizer, requests)
        params = [VSP(**kw) for kw in kwargs]
        t0 = time.perf_counter()
        results = self._llm.generate(prompts, params, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        if len(results) != len(requests):
            raise BackendError(
                f"vllm returned {len(results)} results for {len(requests)} requests; "
                "this vLLM version does not keep one output per prompt"
            )
        out = [
            self._generation(req, res, elapsed) for req, res in zip(requests, results, strict=True)
        ]
        check_one_to_one(requests, out, backend="vllm")
        return out

    def _generation(self, req: GenerationRequest, res: Any, elapsed: float) -> Generation:
        comp = res.outputs
        fins: list[FinishReason] = [
            "length" if c.finish_reason == "length" else "stop" for c in comp
        ]
        return Generation(
            request_id=req.request_id,
            texts=tuple(c.text for c in comp),
            finish_reasons=tuple(fins),
            prompt_tokens=len(res.prompt_token_ids or []),
            completion_tokens=tuple(len(c.token_ids) for c in comp),
            latency=Latency(total_s=elapsed),
            model=self._identity,
            sampling=req.sampling,
        )
